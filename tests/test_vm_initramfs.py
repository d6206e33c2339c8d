"""vm.initramfs: the newc format (round trip, cpio -t), entries, /init, the cache."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import require_tools
from dbgscaffold.errors import EnvironmentProblem
from dbgscaffold.vm import initramfs as ir
from dbgscaffold.vm.initramfs import Entry, FileSpec

SAMPLE = [
    Entry("bin", "dir", 0o755),
    Entry("bin/busybox", "file", 0o755, b"\x7fELF fake"),
    Entry("bin/sh", "symlink", 0o777, b"busybox"),
    Entry("etc", "dir", 0o700),
    Entry("etc/empty", "file", 0o600, b""),
    Entry("etc/odd", "file", 0o644, b"abc"),  # lengths not multiples of 4
    Entry("etc/x" * 30, "file", 0o4755, b"12345"),  # long name, setuid bit kept
]


def test_round_trip():
    archive = ir.newc_archive(SAMPLE)
    assert archive.startswith(b"070701")
    assert len(archive) % 512 == 0
    assert ir.read_newc(archive) == SAMPLE


def test_header_fields_are_what_the_kernel_reads():
    archive = ir.newc_archive([Entry("init", "file", 0o755, b"#!/bin/sh\n")])
    fields = [int(archive[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
    ino, mode, uid, gid, nlink, mtime, size, *_, namesize, check = fields
    assert mode == stat.S_IFREG | 0o755 and (uid, gid, mtime, check) == (0, 0, 0, 0)
    assert size == 10 and namesize == len("init") + 1 and nlink == 1 and ino >= 1
    # Name then data start on 4-byte boundaries.
    assert archive[110:115] == b"init\0" and archive[116:126] == b"#!/bin/sh\n"
    assert b"TRAILER!!!\0" in archive


def test_reproducible():
    assert ir.newc_archive(SAMPLE) == ir.newc_archive(list(SAMPLE))


def test_cpio_tool_lists_and_extracts_it(tmp_path):
    require_tools("cpio")
    archive = tmp_path / "a.cpio"
    archive.write_bytes(ir.newc_archive(SAMPLE))
    listing = subprocess.run(["cpio", "-t", "--quiet"], stdin=archive.open("rb"), capture_output=True, text=True, check=True)
    assert listing.stdout.split() == [e.path for e in SAMPLE]
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], stdin=archive.open("rb"), cwd=out, check=True)
    assert (out / "bin" / "sh").is_symlink() and (out / "bin" / "sh").readlink().name == "busybox"
    assert (out / "etc" / "odd").read_bytes() == b"abc"
    assert stat.S_IMODE((out / "bin" / "busybox").stat().st_mode) == 0o755


def test_bad_archive_is_an_error():
    with pytest.raises(ValueError, match="magic"):
        ir.read_newc(b"070702" + b"0" * 200)


def test_entries_add_parents_and_refuse_duplicates():
    members = ir.entries("#!/bin/sh\n", b"BB", [FileSpec("/lib/modules/extra/m.ko", b"ko", 0o644), FileSpec("/checks/1.sh", b"x", 0o755)], applets=("sh",))
    paths = [e.path for e in members]
    assert paths.index("lib/modules/extra") < paths.index("lib/modules/extra/m.ko")
    assert "bin/sh" in paths and "init" in paths and "checks/1.sh" in paths
    with pytest.raises(ValueError, match="init"):
        ir.entries("x", b"BB", [FileSpec("/init", b"y")])


def test_init_script_mounts_opens_results_and_powers_off():
    script = ir.init_script("echo 'ok 1 x' >&3", results_port="/dev/ttyS1")
    assert script.startswith("#!/bin/sh\n")
    for line in ("mount -t devtmpfs devtmpfs /dev", "mount -t debugfs debugfs /sys/kernel/debug", "exec 3>/dev/ttyS1", ir.BOOT_MARKER):
        assert line in script
    assert script.index("exec 3>") < script.index("echo 'ok 1 x' >&3") < script.index("poweroff -f")


def test_build_is_content_addressed(tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF" + b"\0" * 60)  # "static": no program headers at all
    a = ir.build_initramfs("init A", [FileSpec("/x", b"1")], busybox=busybox, cache=tmp_path / "c")
    b = ir.build_initramfs("init A", [FileSpec("/x", b"1")], busybox=busybox, cache=tmp_path / "c")
    c = ir.build_initramfs("init A", [FileSpec("/x", b"2")], busybox=busybox, cache=tmp_path / "c")
    d = ir.build_initramfs("init A", [FileSpec("/x", b"1", 0o755)], busybox=busybox, cache=tmp_path / "c")
    assert a == b and len({a, c, d}) == 3
    assert a.parent == tmp_path / "c" / "initramfs"
    files = {e.path: e for e in ir.read_newc(a.read_bytes())}
    assert files["init"].data == b"init A" and files["x"].data == b"1"


def test_missing_busybox_says_what_to_install(tmp_path):
    with pytest.raises(EnvironmentProblem, match="busybox-static"):
        ir.build_initramfs("x", busybox=tmp_path / "nope", cache=tmp_path)


def test_real_busybox_gives_a_small_archive(tmp_path):
    require_tools("busybox")
    bb = ir.BUSYBOX if ir.BUSYBOX.exists() else Path(shutil.which("busybox"))
    path = ir.build_initramfs(ir.init_script("true"), busybox=bb, cache=tmp_path)
    size = path.stat().st_size
    assert size < bb.stat().st_size + 64 * 1024  # busybox plus a few kB
