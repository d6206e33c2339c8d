"""vm.qemu: argv assembly, accel choice, TSC rate, and reaping (with a 7-byte guest)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REPO, require_tools
from dbgscaffold.vm import qemu as Q
from dbgscaffold.vm.qemu import Machine, RunResult, SerialPort


def opt(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


# ------------------------------------------------------------- argv (pure)


def test_fast_machine_argv():
    m = Q.fast_machine(Path("/c/vmlinux.elf"), Path("/c/i.cpio"), append=("dbgscaffold.release=6.1",), tsc_khz=2100000)
    m = Q.Machine(**{**m.__dict__, "serial": (Q.CONSOLE, SerialPort("results", "file", "/tmp/r.log", 0x2F8, 3))})
    a = Q.argv(m)
    assert a[0] == "qemu-system-x86_64"
    assert opt(a, "-M") == ["microvm"] and opt(a, "-accel") == ["tcg"] and opt(a, "-m") == ["256"]
    assert "-nodefaults" in a and "-no-user-config" in a and "-no-reboot" in a and opt(a, "-display") == ["none"]
    assert opt(a, "-kernel") == ["/c/vmlinux.elf"] and opt(a, "-initrd") == ["/c/i.cpio"]
    append = opt(a, "-append")[0].split()
    assert append[0] == "console=ttyS0" and "cryptomgr.notests" in append and "panic=-1" in append
    assert "tsc_early_khz=2100000" in append and append[-1] == "dbgscaffold.release=6.1"
    assert opt(a, "-chardev") == ["stdio,id=console,signal=off", "file,id=results,path=/tmp/r.log"]
    assert opt(a, "-serial") == ["chardev:console"]
    assert opt(a, "-device") == ["isa-serial,chardev=results,iobase=0x2f8,irq=3"]
    assert Q.argv(m) == a  # pure: same data, same argv


def test_naive_machine_argv():
    m = Q.naive_machine(Path("/boot/vmlinuz"), Path("/c/i.cpio.gz"))
    a = Q.argv(Q.Machine(**{**m.__dict__, "serial": (Q.CONSOLE,)}))
    assert opt(a, "-M") == ["pc"] and "-cpu" not in a and "-nodefaults" not in a
    assert opt(a, "-append") == ["console=ttyS0 panic=-1"]
    assert opt(a, "-monitor") == ["none"]


def test_machine_options_and_extras():
    m = Machine(kernel=Path("k"), machine_opts=("pit=off", "pic=off"), append=(), initrd=None, serial=(), extra=("-s",), smp=2, cpu="qemu64", accel="kvm")
    a = Q.argv(m)
    assert opt(a, "-M") == ["microvm,pit=off,pic=off"] and opt(a, "-smp") == ["2"] and opt(a, "-cpu") == ["qemu64"]
    assert "-initrd" not in a and "-append" not in a and a[-1] == "-s" and opt(a, "-accel") == ["kvm"]


def test_argv_refuses_bad_serial_data():
    with pytest.raises(ValueError, match="needs a path"):
        Q.argv(Machine(kernel=Path("k"), serial=(SerialPort("r", "file"),)))
    with pytest.raises(ValueError, match="first serial"):
        Q.argv(Machine(kernel=Path("k"), serial=(SerialPort("a", "null"), SerialPort("b", "null"))))
    with pytest.raises(ValueError, match="backend"):
        Q.argv(Machine(kernel=Path("k"), serial=(SerialPort("a", "tcp"),)))


# ------------------------------------------------------------- accel and TSC (pure)


def test_choose_accel():
    calls = []

    def check_ok():
        calls.append(1)
        return True, "0.1 s"

    assert Q.choose_accel("tcg", True, {"vmx"}, check_ok).accel == "tcg"
    assert Q.choose_accel("kvm", False, set(), check_ok).accel == "kvm"  # asked for: obeyed
    no_dev = Q.choose_accel("auto", False, {"vmx"}, check_ok)
    assert no_dev.accel == "tcg" and "/dev/kvm" in no_dev.reason
    no_flags = Q.choose_accel("auto", True, {"sse2", "hypervisor"}, check_ok)
    assert no_flags.accel == "tcg" and "vmx" in no_flags.reason
    assert not calls  # the test boot only runs when the cheap signs agree
    assert Q.choose_accel("auto", True, {"svm"}, check_ok).accel == "kvm"
    hung = Q.choose_accel("auto", True, {"vmx"}, lambda: (False, "no exit within 10 s"))
    assert hung.accel == "tcg" and "no exit within 10 s" in hung.reason
    with pytest.raises(ValueError):
        Q.choose_accel("hvf", True, set(), check_ok)


def test_probe_accel_says_why():
    choice = Q.probe_accel("auto")
    assert choice.accel in ("kvm", "tcg") and choice.reason


def test_tsc_khz_sources_in_order():
    cpuinfo = "model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\ncpu MHz\t\t: 3400.512\nflags\t\t: fpu tsc\n"
    assert Q.tsc_khz_from("2112000\n", cpuinfo) == (2112000, "tsc_freq_khz in sysfs")
    assert Q.tsc_khz_from(None, cpuinfo) == (1900000, "the CPU brand string")
    assert Q.tsc_khz_from(None, "model name\t: Intel(R) Xeon(R) Processor\ncpu MHz\t\t: 2100.000\n") == (2100000, "/proc/cpuinfo cpu MHz")
    assert Q.tsc_khz_from(None, "") == (None, "unknown")


def test_ended_how():
    def r(console="", timed_out=False, status=0):
        return RunResult((), status, timed_out, console, "", "", 1.0, None)

    assert r(timed_out=True, status=None).ended == "timeout"
    assert r("[ 1.0] reboot: Power down\n").ended == "poweroff"
    assert r("Kernel panic - not syncing: Attempted to kill init!\n").ended == "panic"
    assert r("", status=1).ended == "qemu-error"
    assert r("").ended == "unknown"


# ------------------------------------------------------------- running a 7-byte guest


def qemu_pids() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, pgid)} of every live qemu-system process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if comm.startswith("qemu-system") and fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return found


def test_tiny_guest_runs_under_tcg():
    require_tools("qemu-system-x86_64")
    ok, detail = Q.tiny_boot("tcg", timeout=20)
    assert ok, detail


def test_timeout_kills_qemu_and_its_group(tmp_path):
    require_tools("qemu-system-x86_64")
    elf = tmp_path / "hang.elf"
    elf.write_bytes(Q.tiny_pvh_elf(hang=True))
    spawned = []
    real_popen = subprocess.Popen

    def spy(*a, **k):
        p = real_popen(*a, **k)
        spawned.append(p.pid)
        return p

    before = set(qemu_pids())
    start = time.monotonic()
    try:
        subprocess.Popen = spy
        r = Q.run(Q.tiny_machine(elf), timeout=1.5)
    finally:
        subprocess.Popen = real_popen
    assert r.timed_out and r.exit_status is None and r.ended == "timeout"
    assert 1.4 < r.wall_seconds < 8 and time.monotonic() - start < 10
    (pid,) = spawned
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped: not even a zombie
    left = {p: v for p, v in qemu_pids().items() if p not in before}
    assert not left, f"qemu survived: {left}"
    assert not [p for p, (_ppid, pgid) in qemu_pids().items() if pgid == pid]


def _interrupting_popen(spawned: list[int], exc: type[BaseException]):
    """A Popen that records its pid and raises `exc` in run()'s whole-run wait."""
    real_popen = subprocess.Popen

    class Spy(real_popen):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            spawned.append(self.pid)

        def wait(self, timeout=None):
            if timeout is not None and timeout > 20:  # run()'s whole-run wait, not the reaper's
                time.sleep(0.3)
                raise exc("interrupted")
            return super().wait(timeout)

    return Spy


def test_exception_and_ctrl_c_still_reap(tmp_path, monkeypatch):
    require_tools("qemu-system-x86_64")
    elf = tmp_path / "hang.elf"
    elf.write_bytes(Q.tiny_pvh_elf(hang=True))
    for exc in (KeyboardInterrupt, RuntimeError):
        spawned: list[int] = []
        monkeypatch.setattr(Q.subprocess, "Popen", _interrupting_popen(spawned, exc))
        with pytest.raises(exc):
            Q.run(Q.tiny_machine(elf), timeout=60)
        monkeypatch.undo()
        (pid,) = spawned
        assert not Path(f"/proc/{pid}").exists(), f"{exc.__name__}: qemu {pid} survived"


def test_qemu_dies_with_a_killed_parent(tmp_path):
    """A wrapper SIGKILLed mid-run runs no finally: PR_SET_PDEATHSIG still takes QEMU down."""
    require_tools("qemu-system-x86_64")
    elf = tmp_path / "hang.elf"
    elf.write_bytes(Q.tiny_pvh_elf(hang=True))
    code = textwrap.dedent(f"""
        from pathlib import Path
        from dbgscaffold.vm import qemu as Q
        Q.run(Q.tiny_machine(Path({str(elf)!r})), timeout=120)
    """)
    wrapper = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        children = []
        while time.monotonic() < deadline and not children:
            children = [p for p, (ppid, _g) in qemu_pids().items() if ppid == wrapper.pid]
            time.sleep(0.05)
        assert children, "the wrapper never started qemu"
        os.kill(wrapper.pid, signal.SIGKILL)
        wrapper.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(c in qemu_pids() for c in children):
            time.sleep(0.05)
        assert not any(c in qemu_pids() for c in children), "qemu outlived its killed parent"
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()
