"""`dbgscaffold vm shell`: one cached initramfs for every module (unit), and the
interactive shell driven through stdin for a generated module and a lab project
on the default kernel (end to end: the output, `exit` powering off, QEMU gone)."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require, require_tools, run_cli
from dbgscaffold.errors import EnvironmentProblem
from dbgscaffold.runner.checks import GUEST_LIB, guest_files
from dbgscaffold.vm import images, initramfs
from dbgscaffold.vm.shell import ShellGuest, ShellModule, overlay, shell_initrd


def _module(tmp_path: Path, name: str, params: str = "") -> ShellModule:
    ko = tmp_path / f"{name}.ko"
    ko.write_bytes(b"\x7fELF " + name.encode())
    return ShellModule(name, ko, params)


def _guest(tmp_path: Path, name: str, **kw) -> ShellGuest:
    return ShellGuest((_module(tmp_path, name),), name, library=GUEST_LIB, **kw)


def test_two_modules_share_one_cached_initramfs(tmp_path):
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    cache = tmp_path / "cache"
    one = shell_initrd(_guest(tmp_path, "one"), tmp_path / "one.cpio", guest_files(), cache=cache)
    two = shell_initrd(_guest(tmp_path, "two", files=(initramfs.FileSpec("/root/trace.sh", b"echo hi\n", 0o755),)),
                       tmp_path / "two.cpio", guest_files(), cache=cache)
    cached = list((cache / "initramfs").glob("*.cpio"))
    assert len(cached) == 1, cached
    base = cached[0].read_bytes()
    names = {e.path for e in initramfs.read_newc(base)}
    assert {"checks/ktap.sh", "bin/cttyhack", "init"} <= names and not any(n.endswith(".ko") for n in names)
    tails = []
    for initrd in (one, two):
        data = initrd.read_bytes()
        assert data.startswith(base)  # the kernel unpacks the per-run archive after it
        tails.append({e.path: e for e in initramfs.read_newc(data[len(base):])})
    assert tails[0]["run/payload/one.ko"].data == b"\x7fELF one" and "run/payload/two.ko" not in tails[0]
    assert tails[1]["root/trace.sh"].mode == 0o755 and "cd /sys/kernel/debug/two" in tails[1]["run/payload/run.sh"].data.decode()


def test_a_module_without_a_debugfs_root_stays_in_home(tmp_path):
    guest = ShellGuest((_module(tmp_path, "plain"),), "", variables=(("PROJECT", "/root"),))
    script = {e.path: e for e in initramfs.read_newc(overlay(guest))}["run/payload/run.sh"].data.decode()
    assert "export PROJECT=/root" in script and "export ROOT=''" in script
    assert "\n    cd " not in script and "its files are where it makes them" in script


def test_several_modules_load_in_order_with_their_parameters(tmp_path):
    guest = ShellGuest((_module(tmp_path, "provider"), _module(tmp_path, "consumer", "n=3 name=x")))
    members = {e.path: e for e in initramfs.read_newc(overlay(guest))}
    script = members["run/payload/run.sh"].data.decode()
    assert "if insmod /run/payload/provider.ko && insmod /run/payload/consumer.ko n=3 name=x; then" in script
    assert "export MODULES='provider consumer'" in script and {"run/payload/provider.ko", "run/payload/consumer.ko"} <= set(members)


def test_a_wrong_directory_is_a_user_error_before_any_kernel(tmp_path):
    (tmp_path / "empty").mkdir()
    assert run_cli("lab", "start", "systemtap", str(tmp_path / "stap")).exit_code == 0
    for where, says in (("empty", "not a module directory: no Kbuild and no Makefile"),
                        ("missing", "no such directory"),
                        ("stap", "lab 'systemtap' is a systemtap lab; vm shell loads a kernel module you build")):
        r = run_cli("vm", "shell", str(tmp_path / where))
        assert r.exception is None and r.exit_code == 2, r.output
        assert f"{tmp_path / where}: error: {says}" in r.stderr and "Fix: " in r.stderr and "using " not in r.stderr


# ---------------------------------------------------------------- end to end


def _default_pair():
    require_tools("qemu-system-x86_64", "make", "strip")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    try:
        pair, _ = images.default_pair()
    except EnvironmentProblem as exc:
        require(False, f"a default kernel image + headers pair ({exc})")
    if pair.release.startswith("6.12"):
        require(shutil.which("zstd") is not None, "'zstd' on PATH (6.12 is zstd-compressed)")
    return pair


def _qemu_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid and b"qemu-system" in cmdline:
                found.append(int(entry.name))
    return found


HANDWRITTEN = Path(__file__).resolve().parent / "data" / "handwritten"

CASES = {
    # a generated module: its file, and the check library's helpers by hand
    "module": ("new", "shelly", "shelly", (),
               ". /checks/ktap.sh; cat /sys/kernel/debug/shelly/a; put $ROOT/a 7; same $ROOT/a '7\\n' && ok put-and-same; "
               "grep -c tracefs /proc/mounts\n",
               ("\n5\n", "ok 1 put-and-same", "\n1\n")),
    # the other lab kernel: typed input reaches the module's files
    "module-6.1": ("new", "shelly", "shelly", ("--kernel", "6.1"), "cat a; echo sum-$((6*7))\n", ("\n5\n", "sum-42")),
    # the ftrace lab: the student's trace.sh and the lab's tests/lib.sh from /root
    # a hand-written module: its [test] params reach insmod; the shell starts in /root
    "handwritten": ("copy", "knobs", "knobs", (),
                    "cat /sys/kernel/debug/knobs/level; cat /proc/knobs; echo mods=$MODULES\n",
                    ("\n7\n", "knobs ok", "mods=knobs", "its files are where it makes them")),
    "lab": ("lab", "ftrace", "mytrace", (),
            "cd; sh trace.sh function 3 | grep -c 'mytrace_step <-run_write'; . /checks/ktap.sh; . $DBGS_CHECK_LIB; "
            "trace printk 2 && grep -c 'mytrace: step . of 2' /tmp/trace; cat $ROOT/total\n",
            ("\n3\n", "\n2\n", "\n5\n", "[mytrace] /root # ")),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_vm_shell_driven_through_stdin(case, tmp_path):
    kind, what, module, options, commands, expected = CASES[case]
    _default_pair()
    if options:
        require(any(p.release.startswith("6.1.") for p in images.scan_pairs().pairs), "a 6.1 kernel image + headers pair")
    project = tmp_path / "project"
    if kind == "copy":
        shutil.copytree(HANDWRITTEN / what, project)
    else:
        r = run_cli("new", what, "-o", str(project)) if kind == "new" else run_cli("lab", "solution", what, str(project))
        assert r.exit_code == 0, r.output
    where = "/root" if kind == "copy" else f"/sys/kernel/debug/{module}"
    prompt = f"[{module}] {where} # ".encode()
    proc = subprocess.Popen([sys.executable, "-m", "dbgscaffold", "vm", "shell", str(project), *options, "--timeout", "120"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, qemu = b"", []
    try:
        t0 = time.monotonic()
        while prompt not in out and time.monotonic() < t0 + 120:
            if select.select([proc.stdout], [], [], 1)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        assert prompt in out, out.decode(errors="replace")
        print(f"{case}: build + boot to the prompt {time.monotonic() - t0:.1f} s")
        qemu = _qemu_children(proc.pid)
        assert len(qemu) == 1
        proc.stdin.write(commands.encode() + b"exit\n")
        proc.stdin.flush()
        rest, _ = proc.communicate(timeout=90)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode(errors="replace").replace("\r", "")
    assert proc.returncode == 0, text
    for want in expected:
        assert want in text, (want, text)
    assert "reboot: Power down" in text
    assert not Path(f"/proc/{qemu[0]}").exists()  # QEMU exited and was reaped
