"""`dbgscaffold vm run [DIR] -- CMD` (issue 15): CMD in the test VM with DIR's modules
loaded and DIR copied in, its output streamed, its exit status passed through; --gdb
attaches gdb to the guest kernel with the module's symbols where it lies."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from conftest import require_tools, run_cli
from dbgscaffold.runner.vm_run import exit_of, gdb_command, output_of, project_files
from test_vm_module import new_module, require_6_1


def test_what_goes_into_the_guest_is_the_project_not_its_build(tmp_path):
    (tmp_path / "m.c").write_text("x")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.sh").write_text("x")
    for junk in ("m.o", "m.ko", "m.mod.c", ".m.o.cmd", "modules.order", "Module.symvers"):
        (tmp_path / junk).write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    assert [rel for _, rel in project_files(tmp_path)] == ["m.c", "tests/t.sh"]


def test_the_lines_say_output_status_and_gdb():
    assert output_of("# out: hello world") == "hello world" and output_of("# uptime: 1 2") is None
    assert exit_of(["out: 3", "exit: 7"]) == 7 and exit_of(["out: x"]) is None
    line = gdb_command(1234, None, Path("/c/m.ko"), {".text": "0xffffffffc0001000", ".bss": "0xffffffffc0003000"})
    assert shlex.split(line) == ["gdb", "-q", "-ex", "target remote 127.0.0.1:1234", "-ex",
                                 "add-symbol-file /c/m.ko 0xffffffffc0001000 -s .bss 0xffffffffc0003000"]


def test_a_command_runs_with_the_module_loaded_and_its_status_comes_back(tmp_path):
    series = require_6_1()
    mine = new_module(tmp_path, "mine")
    r = run_cli("vm", "run", str(mine), "--kernel", series, "--", "cat /sys/kernel/debug/mine/a; ls; echo oops >&2; exit 3")
    assert r.exit_code == 3, r.output
    assert r.stdout.splitlines()[:2] == ["5", "Kbuild"] and "mine_debugfs.c" in r.stdout and "oops" in r.stdout
    r = run_cli("vm", "run", str(mine), "--kernel", series, "--", "cat", "/sys/kernel/debug/mine/subdir/c")
    assert r.exit_code == 0 and r.stdout == "c data\n", r.output
    r = run_cli("vm", "run", str(mine), "--kernel", series)
    assert r.exit_code == 2 and "no command: write it after --" in r.output
    r = run_cli("vm", "run", str(mine), "--kernel", series, "--", "printf 'last line without a newline'")
    assert r.exit_code == 0 and r.stdout == "last line without a newline\n", r.output


def test_a_module_that_does_not_load_is_exit_1_and_the_command_never_runs(tmp_path):
    series = require_6_1()
    mine = new_module(tmp_path, "mine")
    spec = mine / "dbgscaffold.toml"
    spec.write_text(spec.read_text() + '\n[test]\nparams = "no_such_param=1"\n')
    r = run_cli("vm", "run", str(mine), "--kernel", series, "--", "echo RAN")
    assert r.exit_code == 1, r.output
    assert "RAN" not in r.stdout and "no such parameter" in r.stderr, r.output


def test_gdb_attaches_and_reads_a_module_variable(tmp_path):
    series = require_6_1()
    require_tools("gdb")
    mine = new_module(tmp_path, "mine")
    c = mine / "mine_debugfs.c"
    c.write_text(c.read_text().replace("static u8 mine_a = 5;", "static u8 mine_a = 77;"))
    proc = subprocess.Popen([sys.executable, "-m", "dbgscaffold", "vm", "run", str(mine), "--kernel", series, "--gdb", "--",
                             "sleep 60; cat /sys/kernel/debug/mine/a"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        command = ""
        deadline = time.monotonic() + 120
        while not command and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, proc.stderr.read()
            if line.startswith("gdb: "):
                command = line[len("gdb: "):].strip()
        assert command.startswith("gdb -q") and "add-symbol-file" in command, command
        got = subprocess.run([*shlex.split(command), "-batch", "-ex", "print mine_a", "-ex", "print &mine_a"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert re.search(r"^\$1 = 77 'M'$", got.stdout, re.M), got.stdout + got.stderr
        assert re.search(r"^\$2 = \(u8 \*\) 0xffffffff[0-9a-f]+ <mine_a>( \"M\")?$", got.stdout, re.M), got.stdout
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_vm_shell_gdb_prints_the_command_that_reads_the_module(tmp_path):
    """vm shell --gdb: the banner (after the modules load) says how to attach gdb."""
    import select

    series = require_6_1()
    require_tools("gdb")
    mine = new_module(tmp_path, "shelly")
    proc = subprocess.Popen([sys.executable, "-m", "dbgscaffold", "vm", "shell", str(mine), "--kernel", series, "--gdb", "--timeout", "120"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    try:
        deadline = time.monotonic() + 120
        while b"[shelly] " not in out and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 1)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        text = out.decode(errors="replace").replace("\r", "")
        command = next((line[len("gdb: "):] for line in text.splitlines() if line.startswith("gdb: ")), "")
        assert "add-symbol-file" in command and "target remote 127.0.0.1:" in command, text
        got = subprocess.run([*shlex.split(command), "-batch", "-ex", "print shelly_a"], capture_output=True, text=True, timeout=120,
                             check=False)
        assert re.search(r"^\$1 = 5 '\\005'$", got.stdout, re.M), got.stdout + got.stderr
        proc.stdin.write(b"exit\n")
        proc.stdin.flush()
        proc.communicate(timeout=90)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
