"""A plain (non-editable) `pip install .` into a fresh venv gives a working
`dbgscaffold new`: the templates and specs travel inside the wheel."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, require

pytestmark = pytest.mark.slow


def test_wheel_install_into_fresh_venv_generates_a_project(tmp_path):
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    require(tracked.returncode == 0 and tracked.stdout, "a git checkout of dbgscaffold")
    # Install from a copy so that setuptools' build/ and egg-info stay out of the checkout.
    source = tmp_path / "src"
    for rel in filter(None, tracked.stdout.decode().split("\0")):
        if (REPO / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / rel).write_bytes((REPO / rel).read_bytes())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    exe = str(venv / "bin" / "dbgscaffold")
    new = subprocess.run([exe, "new", "mydebug"], cwd=work, capture_output=True, text=True)
    assert new.returncode == 0, new.stderr
    assert (work / "mydebug" / "mydebug_debugfs.c").read_text().startswith("// SPDX-License-Identifier: GPL-2.0")
    example = subprocess.run([exe, "spec", "example"], capture_output=True, text=True)
    assert example.returncode == 0 and 'type = "u32_array"' in example.stdout
    (work / "ex.toml").write_text(example.stdout)
    every = subprocess.run([exe, "new", "--spec", "ex.toml"], cwd=work, capture_output=True, text=True)
    assert every.returncode == 0, every.stderr
    assert (work / "showcase" / "user" / "control.c").is_file()
    profiles = subprocess.run([exe, "check-config", "--list-profiles"], capture_output=True, text=True)
    assert profiles.returncode == 0 and "systemtap" in profiles.stdout and "ftrace" in profiles.stdout
    # The installed package runs from site-packages, not from this checkout.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import dbgscaffold; print(dbgscaffold.__file__)"], capture_output=True, text=True)
    assert str(REPO) not in where.stdout and "site-packages" in where.stdout
