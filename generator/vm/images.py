"""Kernel images: find image + headers pairs, extract and cache the vmlinux.

A module built against /lib/modules/<release>/build only loads into the kernel
of exactly that release (vermagic), so a pair is an image and a headers tree
of the SAME release; anything else is refused with a message saying which.

Booting the compressed bzImage under TCG spends most of its time in the
decompressor (xz: ~4.5 s of ~7.8 s here), so we extract the uncompressed ELF
once, cache it, and let QEMU start it through its PVH entry point (QEMU's
-kernel accepts an ELF with a XEN_ELFNOTE_PHYS32_ENTRY note). Without that
note we fall back to the bzImage, slower but correct.

Pure parts: parse_bzimage(), find_payload(), pvh_entry(), choose_default().
Edges: scan_pairs(), read_image(), decompress_payload() (zstd command),
boot_image() (cache writes).
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from .. import elf as elf_format
from ..errors import EnvironmentProblem, UserError
from ..kernels import MODULES_ROOT, parse_utsrelease, release_version
from ..paths import atomic_write, cache_dir

BOOT_DIR = Path("/boot")
IMAGE_PREFIX = "vmlinuz-"

# Compressed-payload magics, as scripts/extract-vmlinux knows them.
PAYLOAD_MAGICS: tuple[tuple[str, bytes], ...] = (
    ("xz", b"\xfd7zXZ\x00"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("gzip", b"\x1f\x8b\x08"),
    ("bzip2", b"BZh"),
    ("lzma", b"\x5d\x00\x00\x00"),
    ("lz4", b"\x02\x21\x4c\x18"),
    ("lzo", b"\x89\x4c\x5a"),
)
SUPPORTED = ("xz", "zstd", "gzip", "bzip2", "lzma")

XEN_ELFNOTE_PHYS32_ENTRY = 18  # include/xen/interface/elfnote.h


@dataclass(frozen=True)
class KernelPair:
    """A bootable image and the headers of the same release."""

    release: str  # e.g. 6.1.0-56-amd64
    image: Path  # /boot/vmlinuz-<release>
    build_dir: Path  # /lib/modules/<release>/build

    @property
    def version(self) -> tuple[int, ...]:
        m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", self.release)
        return tuple(int(g) for g in m.groups() if g is not None) if m else ()


@dataclass(frozen=True)
class PairScan:
    pairs: tuple[KernelPair, ...]  # complete pairs, oldest first
    problems: tuple[str, ...]  # images without headers and headers without an image


@dataclass(frozen=True)
class BzImageInfo:
    release: str  # first word of the embedded version string ('' if absent)
    version_string: str
    protocol: int  # boot protocol, e.g. 0x20f
    payload_offset: int  # absolute offset of the compressed payload in the file
    payload_length: int  # its length, including the 4-byte size trailer


@dataclass(frozen=True)
class Payload:
    compression: str  # one of PAYLOAD_MAGICS' names
    offset: int
    length: int  # bytes to hand the decompressor (trailer excluded when known)


@dataclass(frozen=True)
class BootImage:
    """What QEMU's -kernel gets."""

    path: Path
    kind: str  # "pvh-elf" (fast) or "bzimage" (fallback)
    release: str
    note: str = ""  # why we fell back, or where the ELF came from


# ---------------------------------------------------------------- pairs


def _version_key(release: str) -> tuple:
    return (release_version(release), release)


def headers_release(build_dir: Path) -> str | None:
    """UTS_RELEASE of a headers tree (see kernels.parse_utsrelease)."""
    try:
        return parse_utsrelease((Path(build_dir) / "include" / "generated" / "utsrelease.h").read_text(errors="replace")) or None
    except OSError:
        return None


def scan_pairs(boot: Path = BOOT_DIR, modules: Path = MODULES_ROOT) -> PairScan:
    """Every /boot/vmlinuz-<release> (or /lib/modules/<release>/vmlinuz) with
    /lib/modules/<release>/build, and what's incomplete."""
    images = {}
    if Path(boot).is_dir():
        for p in Path(boot).iterdir():
            if p.name.startswith(IMAGE_PREFIX) and not p.name.endswith((".old", ".bak", ".sig")):
                images[p.name[len(IMAGE_PREFIX) :]] = p
    headers = {}
    if Path(modules).is_dir():
        for entry in Path(modules).iterdir():
            if (entry / "build" / "Makefile").is_file():
                headers[entry.name] = entry / "build"
            # Fedora and Arch keep the image beside the modules.
            if entry.name not in images and (entry / "vmlinuz").is_file():
                images[entry.name] = entry / "vmlinuz"
    pairs, problems = [], []
    for release in sorted(set(images) | set(headers), key=_version_key):
        if release in images and release in headers:
            pairs.append(KernelPair(release, images[release], headers[release]))
        elif release in images:
            problems.append(
                f"{images[release]}: no headers for {release} in {modules}/{release}/build "
                f"(Fix: apt-get install linux-headers-{release})"
            )
        else:
            problems.append(
                f"{headers[release]}: headers without an image {boot}/{IMAGE_PREFIX}{release} "
                f"(Fix: apt-get install linux-image-{release})"
            )
    return PairScan(tuple(pairs), tuple(problems))


def choose_default(pairs: tuple[KernelPair, ...] | list[KernelPair], running: str) -> tuple[KernelPair | None, str]:
    """The running kernel's pair if complete, else the newest; with the reason, said."""
    if not pairs:
        return None, "no kernel has both an image in /boot and headers in /lib/modules/<release>/build"
    for pair in pairs:
        if pair.release == running:
            return pair, f"using {pair.release}: the running kernel"
    newest = max(pairs, key=lambda p: _version_key(p.release))
    return newest, (
        f"using {newest.release}: the newest complete image + headers pair "
        f"(the running kernel {running} has no complete pair here)"
    )


def default_pair(boot: Path = BOOT_DIR, modules: Path = MODULES_ROOT, running: str | None = None) -> tuple[KernelPair, str]:
    scan = scan_pairs(boot, modules)
    pair, reason = choose_default(scan.pairs, running or os.uname().release)
    if pair is None:
        detail = "".join(f"\n  {p}" for p in scan.problems)
        raise EnvironmentProblem(
            f"error: {reason}.{detail}\nFix: apt-get install linux-image-amd64 linux-headers-amd64."
        )
    return pair, reason


def pair_for(wanted: str, boot: Path = BOOT_DIR, modules: Path = MODULES_ROOT) -> KernelPair:
    """The pair of an exact release, else the newest whose release starts with a series ('6.1')."""
    scan = scan_pairs(boot, modules)
    exact = [p for p in scan.pairs if p.release == wanted]
    if exact:
        return exact[0]
    series = [p for p in scan.pairs if re.match(re.escape(wanted) + r"(\.|-|\+|$)", p.release)]
    if series:
        return series[-1]
    known = ", ".join(p.release for p in scan.pairs) or "none"
    related = "".join(f"\n  {p}" for p in scan.problems if wanted in p)
    raise EnvironmentProblem(f"error: no complete image + headers pair for {wanted!r} (complete pairs: {known}).{related}")


def check_pair(image: Path, build_dir: Path) -> KernelPair:
    """Pair an explicit image with explicit headers, refusing different releases."""
    info = parse_bzimage(read_image(image, limit=64 * 1024))
    image_release = info.release or Path(image).name.removeprefix(IMAGE_PREFIX)
    hdr_release = headers_release(build_dir)
    if hdr_release is None:
        raise EnvironmentProblem(
            f"{build_dir}: error: not a kernel headers tree (no include/generated/utsrelease.h)."
        )
    if hdr_release != image_release:
        raise UserError(
            f"error: release mismatch: the image {image} is {image_release} but the headers "
            f"{build_dir} are {hdr_release}; a module built against one will not load into the "
            f"other (vermagic). Fix: use /lib/modules/{image_release}/build, or the image "
            f"{BOOT_DIR}/{IMAGE_PREFIX}{hdr_release}."
        )
    return KernelPair(image_release, Path(image), Path(build_dir))


def read_image(image: Path, limit: int | None = None) -> bytes:
    """The image's bytes, or a message with the fix if we may not read it."""
    try:
        with open(image, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except PermissionError:
        raise EnvironmentProblem(
            f"{image}: error: the kernel image is not readable by this user (Ubuntu installs "
            f"/boot/vmlinuz-* mode 0600). Fix: sudo chmod 0644 {image} — and to keep it that way "
            f"across kernel updates: sudo dpkg-statoverride --update --add root root 0644 {image}"
        ) from None
    except FileNotFoundError:
        raise EnvironmentProblem(f"{image}: error: no such kernel image.") from None


# ---------------------------------------------------------------- bzImage (pure)


def parse_bzimage(data: bytes) -> BzImageInfo:
    """Read the x86 boot protocol header (Documentation/arch/x86/boot.rst)."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        raise ValueError("not an x86 bzImage (no 'HdrS' boot header)")
    setup_sects = data[0x1F1] or 4  # 0 means 4, for ancient reasons
    protocol = struct.unpack_from("<H", data, 0x206)[0]
    version = ""
    kver = struct.unpack_from("<H", data, 0x20E)[0]
    if kver:
        start = kver + 0x200
        version = data[start : start + 256].split(b"\0", 1)[0].decode("ascii", "replace")
    offset = length = 0
    if protocol >= 0x208:
        rel, length = struct.unpack_from("<II", data, 0x248)
        offset = (setup_sects + 1) * 512 + rel
    return BzImageInfo(version.split(" ", 1)[0], version, protocol, offset, length)


def _identify(data: bytes, offset: int) -> str | None:
    for name, magic in PAYLOAD_MAGICS:
        if data.startswith(magic, offset):
            return name
    return None


def find_payload(data: bytes) -> Payload:
    """Locate the compressed kernel: by the header's payload fields, else by magic."""
    try:
        info = parse_bzimage(data)
    except ValueError:
        info = None
    if info and info.payload_length and info.payload_offset + info.payload_length <= len(data):
        kind = _identify(data, info.payload_offset)
        if kind:
            # The build appends the uncompressed size as le32 (size_append).
            return Payload(kind, info.payload_offset, info.payload_length - 4)
    # No usable header: the first magic wins, like scripts/extract-vmlinux.
    hits = [(data.find(magic), name) for name, magic in PAYLOAD_MAGICS if name in SUPPORTED]
    hits = [(pos, name) for pos, name in hits if pos >= 0]
    if not hits:
        raise ValueError("no known compressed payload found in the image")
    pos, name = min(hits)
    return Payload(name, pos, len(data) - pos)


def _pvh_entry(read: elf_format.Reader) -> int | None:
    try:
        for name, ntype, desc in elf_format.notes(read):
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY and desc:
                return int.from_bytes(desc[:8], "little")
    except ValueError:
        pass
    return None


def pvh_entry(elf: bytes) -> int | None:
    """The 32-bit physical PVH entry address, or None if this is no ELF with a PVH note."""
    return _pvh_entry(elf_format.of_bytes(elf))


def _intact(path: Path) -> bool:
    """A cached vmlinux that is whole: its PVH note is there and every segment lies inside
    the file (a truncated or overwritten entry is not, and is extracted again)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            def read(offset: int, count: int) -> bytes:
                f.seek(offset)
                return f.read(count)
            inside = all(offset + filesz <= size for _, offset, filesz in elf_format.segments(read))
            return inside and _pvh_entry(read) is not None
    except (OSError, ValueError, struct.error):
        return False


def pvh_entry_of(path: Path) -> int | None:
    """pvh_entry() of an ELF file, reading only its headers and notes (a vmlinux with
    debug info is hundreds of MB)."""
    try:
        with open(path, "rb") as f:
            def read(offset: int, size: int) -> bytes:
                f.seek(offset)
                return f.read(size)
            return _pvh_entry(read)
    except OSError:
        return None


# ---------------------------------------------------------------- extraction (edges)


def decompress_payload(data: bytes, payload: Payload) -> bytes:
    """Decompress; a decompressor stops at its stream's end, trailing bytes ignored."""
    raw = data[payload.offset : payload.offset + payload.length]
    kind = payload.compression
    if kind == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(raw)
    if kind == "lzma":
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(raw)
    if kind == "gzip":
        return zlib.decompressobj(wbits=31).decompress(raw)
    if kind == "bzip2":
        return bz2.BZ2Decompressor().decompress(raw)
    if kind == "zstd":
        # Python 3.11 has no zstd module: the zstd command does it.
        if shutil.which("zstd") is None:
            raise EnvironmentProblem("error: the kernel image is zstd-compressed and 'zstd' is not installed. Fix: apt-get install zstd.")
        proc = subprocess.run(["zstd", "-d", "-c", "-q"], input=raw, capture_output=True, timeout=120, check=False)
        # With a guessed length (no header) zstd complains about the bytes after
        # the frame but has written the kernel; the ELF check judges the result.
        if proc.returncode != 0 and not proc.stdout:
            raise ValueError(f"zstd failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout
    raise ValueError(f"{kind}-compressed kernels are not supported (only {', '.join(SUPPORTED)})")


def image_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _cache_path(release: str, digest: str, cache: Path | None, suffix: str) -> Path:
    """Where what we know of the image whose image_digest() is `digest` is kept: its
    vmlinux (.elf), or that its PVH entry does not boot (.no-pvh)."""
    return (cache or cache_dir()) / "vmlinux" / f"{release}-{digest}{suffix}"


def mark_pvh_unbootable(image: Path, why: str, release: str | None = None, cache: Path | None = None) -> None:
    """Remember that this image's PVH entry does not boot (e.g. a 6.1 KASAN kernel
    triple-faults there): boot_image() gives its bzImage from now on. Keyed by the
    image's bytes, so a rebuilt kernel is tried again."""
    data = read_image(image)
    info = _bzimage_info(data)
    release = release or (info.release if info else "") or Path(image).name.removeprefix(IMAGE_PREFIX)
    atomic_write(_cache_path(release, image_digest(data), cache, ".no-pvh"), why.encode())


def _bzimage_info(data: bytes) -> BzImageInfo | None:
    try:
        return parse_bzimage(data)
    except ValueError:
        return None


def boot_image(image: Path, release: str | None = None, cache: Path | None = None) -> BootImage:
    """The vmlinux ELF (cached) if it has a PVH entry, else the bzImage itself."""
    data = read_image(image)
    info = _bzimage_info(data)
    if pvh_entry(data) is not None:  # already an uncompressed vmlinux
        return BootImage(Path(image), "pvh-elf", release or "", "given an ELF with a PVH note")
    release = release or (info.release if info else "") or Path(image).name.removeprefix(IMAGE_PREFIX)
    digest = image_digest(data)  # once: ~10 MB of sha256, 10 ms
    marker = _cache_path(release, digest, cache, ".no-pvh")
    if marker.is_file():
        why = marker.read_text(errors="replace").strip()
        return BootImage(Path(image), "bzimage", release, f"its PVH entry does not boot ({why}); booting the bzImage")
    target = _cache_path(release, digest, cache, ".elf")
    if target.is_file() and _intact(target):
        return BootImage(target, "pvh-elf", release, f"cached vmlinux extracted from {image}")
    try:
        payload = find_payload(data)
        elf = decompress_payload(data, payload)
    except (ValueError, lzma.LZMAError, zlib.error, OSError, subprocess.TimeoutExpired) as exc:
        return BootImage(Path(image), "bzimage", release, f"could not extract vmlinux ({exc}); booting the bzImage")
    if pvh_entry(elf) is None:
        return BootImage(Path(image), "bzimage", release, "the extracted vmlinux has no PVH entry note (CONFIG_PVH=n?); booting the bzImage")
    atomic_write(target, elf)  # new, or a damaged entry replaced
    return BootImage(target, "pvh-elf", release, f"vmlinux extracted from {image} ({payload.compression})")
