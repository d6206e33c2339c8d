"""The VM core: kernel images, initramfs, QEMU, and reading what the guest said.

One job per module, in pipeline order:

- `images`: find /boot/vmlinuz-<release> + /lib/modules/<release>/build pairs;
  extract and cache the uncompressed vmlinux (PVH entry) from a bzImage.
- `initramfs`: write an uncompressed newc cpio in pure Python; content-addressed cache.
- `qemu`: machine settings as data -> argv; accel probe; run with a timeout; always reap.
- `ktap`: pure, tolerant KTAP parser.
- `crash`: pure classifier of kernel log text; taint decoder; check attribution.
"""
