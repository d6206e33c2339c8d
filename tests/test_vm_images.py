"""vm.images: pairs, the bzImage header, payload extraction, PVH detection, the cache."""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import require, require_tools
from dbgscaffold.errors import EnvironmentProblem, UserError
from dbgscaffold.vm import images
from dbgscaffold.vm.images import KernelPair
from dbgscaffold.vm.qemu import tiny_pvh_elf


def fake_bzimage(payload: bytes, release: str = "6.9.0-test", setup_sects: int = 1) -> bytes:
    """Just enough of an x86 bzImage: boot header, version string, payload + size trailer."""
    base = (setup_sects + 1) * 512
    data = bytearray(base)
    data[0x1F1] = setup_sects
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, 0x20F)
    version = f"{release} (someone@example) #1 SMP".encode() + b"\0"
    data[0x300 : 0x300 + len(version)] = version
    struct.pack_into("<H", data, 0x20E, 0x300 - 0x200)
    rel = 0x40  # the payload sits a little way into the protected-mode part
    struct.pack_into("<II", data, 0x248, rel, len(payload) + 4)
    data += b"\xcc" * rel + payload + struct.pack("<I", 12345678) + b"\x90" * 64
    return bytes(data)


def plain_elf() -> bytes:
    """tiny_pvh_elf() with its note type changed: an ELF without a PVH entry."""
    elf = bytearray(tiny_pvh_elf())
    pos = elf.rfind(b"Xen\0") - 4
    struct.pack_into("<I", elf, pos, 17)
    return bytes(elf)


def make_tree(root: Path, images_: list[str], headers: list[str]) -> tuple[Path, Path]:
    boot, mods = root / "boot", root / "modules"
    boot.mkdir()
    mods.mkdir()
    for r in images_:
        (boot / f"vmlinuz-{r}").write_bytes(fake_bzimage(lzma.compress(tiny_pvh_elf()), r))
    for r in headers:
        gen = mods / r / "build" / "include" / "generated"
        gen.mkdir(parents=True)
        (mods / r / "build" / "Makefile").write_text("")
        (gen / "utsrelease.h").write_text(f'#define UTS_RELEASE "{r}"\n')
    return boot, mods


# ------------------------------------------------------------- pairs


def test_pairs_need_the_exact_release(tmp_path):
    boot, mods = make_tree(tmp_path, ["6.1.0-1-amd64", "6.12.9-amd64", "6.5.0-only-image"], ["6.1.0-1-amd64", "6.12.9-amd64", "6.6.0-only-headers"])
    scan = images.scan_pairs(boot, mods)
    assert [p.release for p in scan.pairs] == ["6.1.0-1-amd64", "6.12.9-amd64"]
    assert len(scan.problems) == 2
    assert any("6.5.0-only-image" in p and "linux-headers-6.5.0-only-image" in p for p in scan.problems)
    assert any("6.6.0-only-headers" in p and "linux-image-6.6.0-only-headers" in p for p in scan.problems)


def test_image_beside_the_modules_counts(tmp_path):
    boot, mods = make_tree(tmp_path, [], ["6.14.2-300.fc42.x86_64"])
    (mods / "6.14.2-300.fc42.x86_64" / "vmlinuz").write_bytes(b"x")
    (pair,) = images.scan_pairs(boot, mods).pairs
    assert pair.image == mods / "6.14.2-300.fc42.x86_64" / "vmlinuz"


def test_default_is_the_running_kernel_else_the_newest():
    a = KernelPair("6.1.0-1-amd64", Path("/boot/a"), Path("/b/a"))
    b = KernelPair("6.12.9-amd64", Path("/boot/b"), Path("/b/b"))
    pair, why = images.choose_default((a, b), running="6.1.0-1-amd64")
    assert pair == a and "running kernel" in why
    pair, why = images.choose_default((a, b), running="6.18.4-other")
    assert pair == b and "newest" in why and "6.18.4-other" in why
    pair, why = images.choose_default((), running="x")
    assert pair is None and "no kernel" in why


def test_default_pair_without_any_pair_says_what_to_install(tmp_path):
    boot, mods = make_tree(tmp_path, ["6.5.0-only-image"], [])
    with pytest.raises(EnvironmentProblem, match="linux-headers-6.5.0-only-image"):
        images.default_pair(boot, mods, running="6.5.0-only-image")


def test_pair_for_series_and_exact(tmp_path):
    boot, mods = make_tree(tmp_path, ["6.1.0-1-amd64", "6.1.0-2-amd64", "6.12.9-amd64"], ["6.1.0-1-amd64", "6.1.0-2-amd64", "6.12.9-amd64"])
    assert images.pair_for("6.1", boot, mods).release == "6.1.0-2-amd64"
    assert images.pair_for("6.1.0-1-amd64", boot, mods).release == "6.1.0-1-amd64"
    assert images.pair_for("6.12", boot, mods).release == "6.12.9-amd64"
    with pytest.raises(EnvironmentProblem, match="6.13"):
        images.pair_for("6.13", boot, mods)


def test_explicit_mismatched_pair_is_refused(tmp_path):
    boot, mods = make_tree(tmp_path, ["6.1.0-1-amd64"], ["6.12.9-amd64", "6.1.0-1-amd64"])
    with pytest.raises(UserError, match=r"mismatch.*6\.1\.0-1-amd64.*6\.12\.9-amd64"):
        images.check_pair(boot / "vmlinuz-6.1.0-1-amd64", mods / "6.12.9-amd64" / "build")
    ok = images.check_pair(boot / "vmlinuz-6.1.0-1-amd64", mods / "6.1.0-1-amd64" / "build")
    assert ok.release == "6.1.0-1-amd64"


def test_unreadable_image_says_how_to_fix(tmp_path, monkeypatch):
    image = tmp_path / "vmlinuz-6.8.0-31-generic"
    image.write_bytes(b"x")

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(EnvironmentProblem) as exc:
        images.read_image(image)
    assert "0600" in str(exc.value) and f"chmod 0644 {image}" in str(exc.value) and "dpkg-statoverride" in str(exc.value)


# ------------------------------------------------------------- header, payload, notes


def test_parse_bzimage_header():
    info = images.parse_bzimage(fake_bzimage(b"\xfd7zXZ\x00rest", "6.9.0-test"))
    assert info.release == "6.9.0-test" and info.protocol == 0x20F
    assert info.payload_offset == 1024 + 0x40 and info.payload_length == 10 + 4
    with pytest.raises(ValueError, match="HdrS"):
        images.parse_bzimage(b"\0" * 4096)


@pytest.mark.parametrize("kind,compress", [("xz", lambda b: lzma.compress(b, format=lzma.FORMAT_XZ)), ("gzip", gzip.compress)])
def test_find_payload_by_header_and_by_magic(kind, compress):
    data = fake_bzimage(compress(tiny_pvh_elf()))
    p = images.find_payload(data)
    assert p.compression == kind and p.offset == 1024 + 0x40
    assert images.decompress_payload(data, p) == tiny_pvh_elf()
    # Without a header: found by magic; the trailing bytes don't bother the decompressor.
    headless = b"\0" * 100 + compress(tiny_pvh_elf()) + b"\x12\x34\x56\x78"
    p = images.find_payload(headless)
    assert (p.compression, p.offset) == (kind, 100)
    assert images.decompress_payload(headless, p) == tiny_pvh_elf()


def test_pvh_entry():
    assert images.pvh_entry(tiny_pvh_elf()) == 0x100000
    assert images.pvh_entry(plain_elf()) is None
    assert images.pvh_entry(b"not an elf") is None


def test_boot_image_extracts_caches_and_falls_back(tmp_path):
    image = tmp_path / "vmlinuz-6.9.0-test"
    image.write_bytes(fake_bzimage(lzma.compress(tiny_pvh_elf())))
    got = images.boot_image(image, cache=tmp_path / "cache")
    assert got.kind == "pvh-elf" and got.release == "6.9.0-test"
    assert got.path.parent == tmp_path / "cache" / "vmlinux" and got.path.name.startswith("6.9.0-test-")
    assert got.path.read_bytes() == tiny_pvh_elf()
    again = images.boot_image(image, cache=tmp_path / "cache")
    assert again.path == got.path and "cached" in again.note
    assert not list((tmp_path / "cache" / "vmlinux").glob("*.tmp"))

    # Its PVH entry marked as not booting (what a boot that died before /init does): the
    # bzImage from now on, with the reason; another image of the same release is not marked.
    images.mark_pvh_unbootable(image, "died before /init", cache=tmp_path / "cache")
    marked = images.boot_image(image, cache=tmp_path / "cache")
    assert marked.kind == "bzimage" and marked.path == image and "died before /init" in marked.note, marked.note
    rebuilt = tmp_path / "vmlinuz-6.9.0-test-rebuilt"
    rebuilt.write_bytes(fake_bzimage(lzma.compress(tiny_pvh_elf() + b"\0" * 16), "6.9.0-test"))
    assert images.boot_image(rebuilt, cache=tmp_path / "cache").kind == "pvh-elf"

    # No PVH note: the bzImage itself, and say why.
    noted = tmp_path / "vmlinuz-6.9.0-nopvh"
    noted.write_bytes(fake_bzimage(gzip.compress(plain_elf()), "6.9.0-nopvh"))
    got = images.boot_image(noted, cache=tmp_path / "cache")
    assert got.kind == "bzimage" and got.path == noted and "PVH" in got.note

    # An unsupported compression: the bzImage, and say why.
    lz4ish = tmp_path / "vmlinuz-6.9.0-lz4"
    lz4ish.write_bytes(fake_bzimage(b"\x02\x21\x4c\x18" + b"\0" * 50, "6.9.0-lz4"))
    got = images.boot_image(lz4ish, cache=tmp_path / "cache")
    assert got.kind == "bzimage" and "lz4" in got.note


def test_zstd_payload_through_the_zstd_command(tmp_path):
    require_tools("zstd")
    packed = subprocess.run(["zstd", "-q", "-c"], input=tiny_pvh_elf(), stdout=subprocess.PIPE, check=True).stdout
    image = tmp_path / "vmlinuz-6.9.0-z"
    image.write_bytes(fake_bzimage(packed, "6.9.0-z"))
    got = images.boot_image(image, cache=tmp_path / "cache")
    assert got.kind == "pvh-elf" and got.path.read_bytes() == tiny_pvh_elf()


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_real_debian_kernels_extract_to_pvh_elves(series):
    """6.1 is xz, 6.12 is zstd; both have CONFIG_PVH=y. Uses the real cache (extract once)."""
    scan = images.scan_pairs()
    pairs = [p for p in scan.pairs if p.release.startswith(series + ".")]
    require(bool(pairs), f"a {series} kernel image + headers pair")
    require(shutil.which("zstd") is not None or series == "6.1", "'zstd' on PATH")
    pair = pairs[-1]
    assert images.check_pair(pair.image, pair.build_dir) == pair
    got = images.boot_image(pair.image, pair.release)
    assert got.kind == "pvh-elf", got.note
    with open(got.path, "rb") as f:
        head = f.read(1 << 20)
    assert head[:4] == b"\x7fELF"
    assert images.pvh_entry(got.path.read_bytes()) is not None
