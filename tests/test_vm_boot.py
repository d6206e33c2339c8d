"""End to end on both Debian kernels: boot, KTAP on ttyS1, a panic, a hang.

Each boot is ~2-3 s under TCG here (microvm, PVH vmlinux, trimmed arguments).
"""

from __future__ import annotations

import shutil

import pytest

from conftest import KERNEL_SERIES, qemu_processes, require, require_tools
from dbgscaffold.vm import crash, images, initramfs, ktap, qemu

pytestmark = pytest.mark.slow

KTAP_BODY = r"""
echo 'KTAP version 1' >&3
echo '1..2' >&3
if [ -d /sys/kernel/debug ] && grep -q ' /sys/kernel/debug debugfs ' /proc/mounts; then
    echo 'ok 1 debugfs mounted' >&3
else
    echo 'not ok 1 debugfs mounted' >&3
fi
want=$(sed -n 's/.*dbgscaffold\.release=\([^ ]*\).*/\1/p' /proc/cmdline)
got=$(uname -r)
echo "# release: $got" >&3
if [ -n "$want" ] && [ "$got" = "$want" ]; then
    echo 'ok 2 uname' >&3
else
    echo "# expected '$want'" >&3
    echo 'not ok 2 uname' >&3
fi
echo "# taint: $(cat /proc/sys/kernel/tainted)" >&3
"""


@pytest.fixture(scope="module", params=KERNEL_SERIES)
def kernel(request) -> tuple[images.KernelPair, images.BootImage]:
    require_tools("qemu-system-x86_64")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    scan = images.scan_pairs()
    pairs = [p for p in scan.pairs if p.release.startswith(request.param + ".")]
    require(bool(pairs), f"a {request.param} kernel image + headers pair")
    pair = pairs[-1]
    boot = images.boot_image(pair.image, pair.release)
    if request.param == "6.12":
        require(shutil.which("zstd") is not None, "'zstd' on PATH (6.12 is zstd-compressed)")
    assert boot.kind == "pvh-elf", boot.note
    return pair, boot


@pytest.fixture(scope="module")
def accel() -> str:
    return qemu.probe_accel("auto").accel


def boot(kernel, accel, body: str, timeout: float, append=(), workdir=None) -> qemu.RunResult:
    pair, image = kernel
    initrd = initramfs.build_initramfs(initramfs.init_script(body))
    machine = qemu.fast_machine(image.path, initrd, append=(f"dbgscaffold.release={pair.release}", *append), accel=accel)
    return qemu.run(machine, timeout=timeout, workdir=workdir)




def test_boot_runs_ktap_and_powers_off(kernel, accel, tmp_path):
    pair, _ = kernel
    r = boot(kernel, accel, KTAP_BODY, timeout=60, workdir=tmp_path)
    assert r.ended == "poweroff", r.console[-2000:] + r.stderr
    assert r.exit_status == 0 and not r.timed_out
    assert initramfs.BOOT_MARKER in r.console and r.boot_seconds is not None
    doc = ktap.parse(r.results)
    assert doc.ok, (doc, r.results)
    assert [(t.number, t.name, t.status) for t in doc.tests] == [(1, "debugfs mounted", "pass"), (2, "uname", "pass")]
    assert f"release: {pair.release}" in doc.tests[1].diagnostics
    taint = next(d for d in doc.diagnostics if d.startswith("taint: "))
    assert not crash.decode_taint(taint.removeprefix("taint: ")).failed
    assert crash.classify(r.console) == []
    assert (tmp_path / "console.log").read_text() == r.console and (tmp_path / "results.log").read_text() == r.results
    print(f"\n{pair.release}: boot {r.boot_seconds:.2f} s, cycle {r.wall_seconds:.2f} s")


def test_a_panicking_guest_is_a_crash(kernel, accel):
    """/init exits -> 'Attempted to kill init!'; panic=-1 + -no-reboot makes QEMU exit."""
    body = "echo 'KTAP version 1' >&3\necho '1..1' >&3\nexit 3\n"
    r = boot(kernel, accel, body, timeout=60)
    assert not r.timed_out and r.ended == "panic", r.console[-2000:]
    reports = crash.classify(r.console)
    assert [x.kind for x in reports] == ["panic"]
    assert reports[0].title.startswith("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300")
    assert "Call Trace:" in reports[0].excerpt
    doc = ktap.parse(r.results)
    assert [t.status for t in doc.tests] == ["crashed"] and doc.failed


def test_a_hanging_guest_is_killed_at_the_timeout(kernel, accel):
    body = "echo 'KTAP version 1' >&3\nsleep 100000\n"
    r = boot(kernel, accel, body, timeout=12)  # room for a slow boot on a loaded host
    assert r.timed_out and r.exit_status is None and r.ended == "timeout"
    assert 11.9 < r.wall_seconds < 30
    assert r.boot_seconds is not None, "it should hang in /init, not in the boot"
    assert r.results.startswith("KTAP version 1")
    # The initramfs is content-addressed, so its path names this guest alone.
    initrd = initramfs.build_initramfs(initramfs.init_script(body))
    assert str(initrd) in r.argv
    assert qemu_processes(str(initrd)) == []
