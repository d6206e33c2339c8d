"""The fault matrix (issue 12), row by row: what a user gets when a part is missing or
breaks: a message with a Fix line and the documented exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require, run_cli
from dbgscaffold.vm import images


def path_without(tmp_path: Path, *prefixes: str) -> str:
    """A PATH holding every program of the real one but those named prefix*."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        for p in Path(d).glob("*") if Path(d).is_dir() else ():
            if not p.name.startswith(prefixes) and not (bin_ / p.name).exists():
                (bin_ / p.name).symlink_to(p)
    return str(bin_)


@pytest.mark.parametrize("command", [["test"], ["vm", "shell"]])
def test_no_qemu_is_exit_4_with_the_package_to_install(tmp_path, command):
    require(bool(images.scan_pairs().pairs), "a kernel image + headers pair (the command picks one before it needs QEMU)")
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "mydebug")).exit_code == 0
    env = {**os.environ, "PATH": path_without(tmp_path, "qemu-system-")}
    r = subprocess.run([sys.executable, "-m", "dbgscaffold", *command, str(tmp_path / "mydebug")], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
    assert "error: 'qemu-system-x86_64' is not installed" in r.stderr and "Fix: apt-get install qemu-system-x86" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
