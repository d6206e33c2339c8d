"""dbgscaffold doctor: every item with its fix; this machine is ready."""

from __future__ import annotations

import shutil

from conftest import require, require_tools, run_cli
from dbgscaffold import doctor
from dbgscaffold.vm import images, initramfs


def test_busybox_missing_or_dynamic_says_how_to_fix(tmp_path):
    missing = doctor._busybox(tmp_path / "busybox")
    assert missing.state == "fail" and missing.fix == "sudo apt-get install busybox-static"
    require(shutil.which("ls") is not None, "ls")
    dynamic = doctor._busybox(type(tmp_path)(shutil.which("ls")))
    assert dynamic.state == "fail" and "dynamically linked" in dynamic.detail


def test_a_missing_tool_names_its_package():
    item = doctor._tool("no-such-tool-dbgscaffold", "some-package", "why")
    assert item.state == "fail" and item.fix == "sudo apt-get install some-package"


def test_this_machine_is_ready():
    require_tools("qemu-system-x86_64", "make", "strip")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    require(bool(images.scan_pairs().pairs), "a kernel image + headers pair")
    r = run_cli("doctor")
    assert r.exit_code == 0, r.output
    assert "ok   qemu-system-x86_64" in r.stdout and "default kernel: using" in r.stdout
    assert "/dev/kvm" in r.stdout
