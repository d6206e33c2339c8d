"""`dbgscaffold test --kernel PATH` on a kernel built here (the tiny_kernel fixture: Debian's
linux-source-6.1, tinyconfig + kernel_configs/vm.config, built by dbgscaffold's own kernel_build).

The classic generated module and the hand-written ones pass on it; a tree whose .config
lacks what the VM needs, or that lacks Module.symvers, is exit 4 before anything boots,
with the fix; an image paired with the headers of another release is refused; a PVH
entry that does not boot falls back to the bzImage, says so and remembers it; and a
crash on a kernel without ACPI still ends its VM at once.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from conftest import run_cli, run_json
from dbgscaffold.vm import images

pytestmark = pytest.mark.slow

HANDWRITTEN = Path(__file__).resolve().parent / "data" / "handwritten"


def test_generated_and_hand_written_modules_pass_on_a_kernel_built_here(tiny_kernel, tmp_path):
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "mydebug")).exit_code == 0
    for name in ("knobs", "pair"):
        shutil.copytree(HANDWRITTEN / name, tmp_path / name)
    code, doc, out = run_json(tmp_path, *(str(tmp_path / n) for n in ("mydebug", "knobs", "pair")), "--kernel", str(tiny_kernel.tree))
    assert code == 0, out
    assert f"using {tiny_kernel.release}: the kernel built in {tiny_kernel.tree}" in out
    assert [(r["module"], r["exit_code"], r["kernel"], r["image"]) for r in doc["runs"]] == [
        ("mydebug", 0, tiny_kernel.release, "pvh-elf"), ("knobs", 0, tiny_kernel.release, "pvh-elf"), ("pair", 0, tiny_kernel.release, "pvh-elf")]
    assert len(doc["runs"][0]["checks"]) == 21  # the spec's checks; a blob is read-only on 6.1
    assert any(c["name"] == "tests/level.sh" and c["status"] == "pass" for c in doc["runs"][1]["checks"])
    listed = run_cli("kernels")
    assert f"{tiny_kernel.tree}  (--kernel {tiny_kernel.name}: built by 'dbgscaffold kernel build')" in listed.stdout, listed.stdout
    assert listed.stdout.count(str(tiny_kernel.tree)) == 1  # not again as a remembered --kernel PATH


def fake_tree(real: Path, dest: Path, drop: tuple[str, ...] = (), config_edit=None) -> Path:
    """`real` as symlinks, less `drop`, with an edited copy of its .config."""
    dest.mkdir()
    for entry in real.iterdir():
        if entry.name not in drop and entry.name != ".config":
            (dest / entry.name).symlink_to(entry)
    text = (real / ".config").read_text()
    (dest / ".config").write_text(config_edit(text) if config_edit else text)
    return dest


def test_a_tree_the_vm_cannot_boot_is_exit_4_with_the_verified_fix(tiny_kernel, tmp_path):
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "mydebug")).exit_code == 0
    off = fake_tree(tiny_kernel.tree, tmp_path / "nodevtmpfs",
                    config_edit=lambda t: t.replace("CONFIG_DEVTMPFS=y", "# CONFIG_DEVTMPFS is not set").replace("CONFIG_TMPFS=y", "# CONFIG_TMPFS is not set"))
    r = run_cli("test", str(tmp_path / "mydebug"), "--kernel", str(off))
    assert r.exit_code == 4, r.output
    assert f"{off / '.config'}: error: the test VM cannot boot this kernel: CONFIG_DEVTMPFS is not set" in r.stderr
    assert "CONFIG_TMPFS is not set" in r.stderr and "Fix (verified on its Kconfig tree)" in r.stderr
    assert "\n  CONFIG_DEVTMPFS=y" in r.stderr and "\n  CONFIG_TMPFS=y" in r.stderr
    bare = fake_tree(tiny_kernel.tree, tmp_path / "nosymvers", drop=("Module.symvers",))
    r = run_cli("test", str(tmp_path / "mydebug"), "--kernel", str(bare))
    assert r.exit_code == 4 and "lacks Module.symvers" in r.stderr and "Fix: make -C" in r.stderr, r.output
    assert r.exception is None
    noimage = fake_tree(tiny_kernel.tree, tmp_path / "noimage", drop=("arch", "vmlinux"))
    r = run_cli("test", str(tmp_path / "mydebug"), "--kernel", str(noimage))
    assert r.exit_code == 4 and "lacks arch/x86/boot/bzImage (nor a vmlinux with a PVH entry)" in r.stderr, r.output
    r = run_cli("test", str(tmp_path / "mydebug"), "--kernel", str(tmp_path / "nowhere"))
    assert r.exit_code == 2 and "no such file or directory" in r.stderr and "Fix:" in r.stderr, r.output


def test_an_image_with_headers_of_another_release_is_refused(tiny_kernel, tmp_path):
    debian = images.scan_pairs().pairs[0]
    r = run_cli("test", str(HANDWRITTEN / "hello"), "--kernel", str(debian.image), "--headers", str(tiny_kernel.tree))
    assert r.exit_code == 2 and "release mismatch" in r.stderr and "Fix:" in r.stderr, r.output
    r = run_cli("build", str(HANDWRITTEN / "hello"), "--kernel", str(tiny_kernel.tree / "arch" / "x86" / "boot" / "bzImage"))
    assert r.exit_code == 2 and "needs the headers it was built with" in r.stderr, r.output


def _break_pvh_entry(elf_path: Path, dest: Path) -> None:
    """A copy of a vmlinux whose PVH entry is ud2: with no IDT yet, a triple fault."""
    data = bytearray(elf_path.read_bytes())
    entry = images.pvh_entry(bytes(data))
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_paddr <= entry < p_paddr + p_filesz:
            data[p_offset + entry - p_paddr : p_offset + entry - p_paddr + 2] = b"\x0f\x0b"
            dest.write_bytes(bytes(data))
            return
    raise AssertionError("the PVH entry is in no loadable segment")


def test_a_pvh_entry_that_does_not_boot_falls_back_to_the_bzimage(tiny_kernel, tmp_path, monkeypatch):
    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))  # the broken vmlinux stays in this test's cache
    bz = tiny_kernel.tree / "arch" / "x86" / "boot" / "bzImage"
    good = images.boot_image(bz, tiny_kernel.release)
    assert good.kind == "pvh-elf"
    broken = good.path.with_suffix(".broken")
    _break_pvh_entry(good.path, broken)
    broken.replace(good.path)  # what boot_image() will hand QEMU for this bzImage
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "mydebug")).exit_code == 0
    code, doc, out = run_json(tmp_path, str(tmp_path / "mydebug"), "--kernel", str(tiny_kernel.tree))
    assert code == 0, out
    run = doc["runs"][0]
    assert run["image"] == "bzimage" and "its PVH entry does not boot" in run["boot_note"], run["boot_note"]
    assert "its PVH entry does not boot" in out  # said in the report, not only in the JSON
    code, doc, out = run_json(tmp_path, str(tmp_path / "mydebug"), "--kernel", str(tiny_kernel.tree))
    assert code == 0 and doc["runs"][0]["image"] == "bzimage" and doc["runs"][0]["boot"] == "snapshot", out  # remembered


def test_a_crash_on_a_kernel_without_acpi_ends_its_vm_at_once(tiny_kernel, tmp_path):
    from test_vm_snapshot import null_deref_module

    project = null_deref_module(tmp_path, "broken")
    code, doc, out = run_json(tmp_path, str(project), "--kernel", str(tiny_kernel.tree), "--timeout", "60")
    assert code == 6, out
    run = doc["runs"][0]
    assert run["ended"] != "timeout" and run["vm_seconds"] < 20, (run["ended"], run["vm_seconds"])
    assert "NULL pointer dereference" in run["verdict"] and "subdir/c: replace" in run["verdict"]


def test_the_lab_commands_take_a_kernel_tree(tiny_kernel, tmp_path):
    project = tmp_path / "basics"
    assert run_cli("lab", "solution", "debugfs-basics", str(project)).exit_code == 0
    r = run_cli("lab", "check", str(project), "--kernel", str(tiny_kernel.tree))
    assert r.exit_code == 0, r.output
    assert f"{tiny_kernel.release}: 12/12 points" in r.stdout
