"""kernel_build without building a kernel: names, keys, and bad input (no VM, no kbuild).

The real build (Debian's linux-source-6.1, tinyconfig + vm.config) is the tiny_kernel
fixture, used by tests/test_vm_own_kernel.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbgscaffold import kernel_build as K
from dbgscaffold.errors import EXIT_BUILD, EXIT_ENVIRONMENT, UserError


def fake_source(tmp_path: Path, tinyconfig: str = "\t@echo no tinyconfig here >&2; exit 2") -> Path:
    src = tmp_path / "linux"
    src.mkdir()
    (src / "Makefile").write_text(f"VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 99\nEXTRAVERSION =\n\ntinyconfig:\n{tinyconfig}\n")
    return src


def test_names_and_keys(tmp_path):
    src = fake_source(tmp_path)
    assert K.build_name(src, ()) == "vm-6.1" and K.build_name(src, ("debug", "systemtap")) == "debug+systemtap-6.1"
    frag = tmp_path / "x.config"
    frag.write_text("CONFIG_A=y\n")
    key = K.build_key(src, [frag])
    assert key == K.build_key(src, [frag])
    frag.write_text("CONFIG_A=y\nCONFIG_B=y\n")
    assert K.build_key(src, [frag]) != key  # a changed profile is a new kernel


def test_no_source_for_a_series_says_which_package(monkeypatch, tmp_path):
    monkeypatch.setattr(K, "SOURCES", tmp_path)
    with pytest.raises(UserError) as info:
        K.source_for("9.99")
    assert info.value.exit_code == EXIT_ENVIRONMENT and "apt-get install linux-source-9.99" in str(info.value)
    with pytest.raises(UserError, match="not a kernel source tree"):
        K.source_for(tmp_path)  # a directory without a kernel Makefile


def test_an_unknown_profile_fails_before_anything_runs(tmp_path):
    with pytest.raises(UserError, match="nosuchprofile"):
        K.build_kernel(fake_source(tmp_path), ("nosuchprofile",), root=tmp_path / "kernels")
    assert not (tmp_path / "kernels").exists()


def test_missing_build_tools_are_named_with_their_packages(monkeypatch):
    monkeypatch.setattr(K.shutil, "which", lambda tool: None if tool in ("flex", "bison") else f"/usr/bin/{tool}")
    with pytest.raises(UserError) as info:
        K.check_tools()
    assert info.value.exit_code == EXIT_ENVIRONMENT and "Fix: apt-get install flex bison" in str(info.value)


def test_a_failed_build_leaves_nothing_that_looks_built(tmp_path, monkeypatch):
    monkeypatch.setattr(K, "check_tools", lambda: None)
    root = tmp_path / "kernels"
    with pytest.raises(UserError) as info:
        K.build_kernel(fake_source(tmp_path), (), root=root)
    assert info.value.exit_code == EXIT_BUILD and "make tinyconfig failed" in str(info.value) and "no tinyconfig here" in str(info.value)
    left = sorted(p.name for p in root.iterdir())
    assert not [n for n in left if not n.endswith((".lock", ".log"))], left  # no tree, no temporary tree


def test_ctrl_c_mid_build_stops_make_keeps_nothing_and_exits_130(tmp_path):
    """The console script, as a user runs it: SIGINT while make runs (here a tinyconfig
    target that sleeps) ends make's whole process group, removes the half-built tree,
    says so and exits 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import require_tools

    require_tools(*(tool for tool, _ in K.TOOLS))
    src = fake_source(tmp_path, "\t@echo configuring; sleep 60 # dbgscaffold-ctrl-c-test")
    proc = subprocess.Popen([sys.executable, "-m", "dbgscaffold", "kernel", "build", "--source", str(src)],
                            env={**os.environ, "DBGSCAFFOLD_CACHE": str(tmp_path / "cache")},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernels = tmp_path / "cache" / "kernels"
    deadline = time.monotonic() + 60
    while not any(kernels.glob(".*.tmp-*")) and time.monotonic() < deadline:  # make has started
        time.sleep(0.1)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, (proc.returncode, out, err)
    left = [p.name for p in kernels.iterdir() if not p.name.endswith((".lock", ".log"))]
    assert left == [], left
    sleepers = subprocess.run(["pgrep", "-f", "dbgscaffold-ctrl-c-test"], capture_output=True, text=True).stdout.split()
    assert sleepers == [], "make's children outlived the interrupt"


def test_a_full_disk_says_so_with_a_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(K, "check_tools", lambda: None)
    src = fake_source(tmp_path, "\t@echo 'cc1: error: .tmp.o: No space left on device' >&2; exit 1")
    with pytest.raises(UserError) as info:
        K.build_kernel(src, (), root=tmp_path / "kernels")
    assert info.value.exit_code == EXIT_ENVIRONMENT and "is full (No space left on device)" in str(info.value)
    assert "DBGSCAFFOLD_CACHE" in str(info.value)
    assert not [p for p in (tmp_path / "kernels").iterdir() if not p.name.endswith((".lock", ".log"))]
