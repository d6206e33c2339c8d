#!/usr/bin/env python3
"""Boot-cycle benchmark: the naive QEMU cycle against dbgscaffold.vm's fast one.

    .venv/bin/python scripts/bench_vm.py [--kernel 6.12] [--runs 5]

naive: the bzImage as installed, QEMU's default PC machine and devices, a
       gzip-compressed initramfs, `console=ttyS0 panic=-1`.
fast:  the extracted vmlinux through its PVH entry, microvm, -nodefaults,
       an uncompressed initramfs, the trimmed kernel arguments (qemu.FAST_APPEND).
Both run the same /init (KTAP on ttyS1, then poweroff) and must deliver it.

Printed: the one-off vmlinux extraction, the packing of each initramfs, and
boot+poweroff, as medians of interleaved runs (this host is noisy: +-25-40 %
run to run, so interleaving makes the noise hit both alike). Target: the
fast cycle (pack + boot) >= 3x faster than the naive one. Not a timed test.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dbgscaffold.vm import images, initramfs, ktap, qemu

TARGET_RATIO = 3.0
BODY = "echo 'KTAP version 1' >&3\necho '1..1' >&3\necho \"ok 1 booted $(uname -r)\" >&3\n"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def pack(cache: Path, compress: bool) -> Path:
    """Pack from scratch (a fresh cache dir: no hit), gzip'd for the naive cycle."""
    path = initramfs.build_initramfs(initramfs.init_script(BODY), cache=cache)
    if not compress:
        return path
    gz = path.with_suffix(".cpio.gz")
    gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=6))
    return gz


def boot_once(machine: qemu.Machine, timeout: float) -> float:
    r = qemu.run(machine, timeout=timeout)
    doc = ktap.parse(r.results)
    if r.timed_out or not doc.ok:
        raise SystemExit(f"bench_vm: a boot failed ({r.ended}): {r.results!r}\n{r.console[-1500:]}\n{r.stderr}")
    return r.wall_seconds


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", default=None, help="release or series (default: the default pair)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    if args.kernel:
        pair, why = images.pair_for(args.kernel), f"asked for {args.kernel}"
    else:
        pair, why = images.default_pair()
    accel = qemu.probe_accel("auto")
    print(f"kernel {pair.release} ({why})\naccel  {accel.accel}: {accel.reason}\n")

    with tempfile.TemporaryDirectory(prefix="bench-vm-") as tmp:
        tmp = Path(tmp)
        extract_s, boot_image = timed(lambda: images.boot_image(pair.image, pair.release, cache=tmp / "x"))
        if boot_image.kind != "pvh-elf":
            print(f"no PVH vmlinux: {boot_image.note}")
            return 1
        pack_s: dict[str, list[float]] = {"naive": [], "fast": []}
        boot_s: dict[str, list[float]] = {"naive": [], "fast": []}
        tsc = qemu.host_tsc_khz()
        for i in range(args.runs):
            # Interleaved, and alternating which goes first.
            order = ("naive", "fast") if i % 2 == 0 else ("fast", "naive")
            for kind in order:
                seconds, initrd = timed(pack, tmp / f"{kind}-{i}", compress=kind == "naive")
                pack_s[kind].append(seconds)
                if kind == "naive":
                    machine = qemu.naive_machine(pair.image, initrd, accel=accel.accel)
                else:
                    machine = qemu.fast_machine(boot_image.path, initrd, tsc_khz=tsc, accel=accel.accel)
                boot_s[kind].append(boot_once(machine, args.timeout))
                print(f"  run {i + 1} {kind:5}: pack {pack_s[kind][-1]:.3f} s, boot+poweroff {boot_s[kind][-1]:.2f} s", flush=True)

    cycle = {k: [p + b for p, b in zip(pack_s[k], boot_s[k])] for k in pack_s}
    ratio = statistics.median(cycle["naive"]) / statistics.median(cycle["fast"])
    print()
    print(f"extract vmlinux (once, cold cache) {extract_s:6.2f} s")
    for kind in ("naive", "fast"):
        print(f"{kind:5} pack initramfs            {fmt(pack_s[kind])}")
        print(f"{kind:5} boot+poweroff             {fmt(boot_s[kind])}")
        print(f"{kind:5} cycle (pack + boot)       {fmt(cycle[kind])}")
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"\nfast cycle is {ratio:.1f}x faster than naive ({verdict} the {TARGET_RATIO:g}x target); {args.runs} interleaved runs, medians")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
