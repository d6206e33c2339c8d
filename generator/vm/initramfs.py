"""The guest's root filesystem: an uncompressed newc cpio, written in pure Python.

No root, no cpio binary. Uncompressed because under TCG every decompressor is
slow and the archive is ~2 MB (a static busybox, a few symlinks, /init and the
caller's files). Device nodes are not needed: /init mounts devtmpfs on /dev.

The archive is content-addressed: the hash of every entry (paths, modes,
bytes) names the cached file, so the same inputs are packed once.

Pure: newc_archive(), read_newc(), init_script(), entries(). Edge: build_initramfs().
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import elf
from ..errors import EnvironmentProblem
from ..paths import atomic_write, cache_dir

BUSYBOX = Path("/bin/busybox")

# What /init and the checks use; each costs one symlink (~120 bytes).
APPLETS = (
    "sh", "mount", "umount", "mkdir", "cat", "echo", "printf", "test", "[", "uname",
    "insmod", "rmmod", "lsmod", "modinfo", "poweroff", "reboot", "sleep", "ls", "grep",
    "sed", "head", "tail", "wc", "dmesg", "sync", "stat", "cut", "tr", "timeout", "od",
    "dd", "cmp", "xargs", "stty", "true", "false", "ln", "rm", "cp", "chmod", "seq", "expr",
    "mkfifo", "find", "sort", "uniq",
)

DEBUGFS = "/sys/kernel/debug"  # where /init mounts debugfs
# Without ACPI (a tinyconfig kernel) `poweroff -f` only halts and QEMU stays; a reboot
# under QEMU's -no-reboot ends it on every kernel. (ktap.sh's dbgs_poweroff does the same.)
POWER_OFF = "[ -d /sys/firmware/acpi ] && poweroff -f\nreboot -f"
DIRS = ("bin", "dev", "proc", "sys", "tmp", "run", "lib", "lib/modules", "checks")

# Lines /init prints so the host can tell phases apart; the console reader
# timestamps BOOT_MARKER to measure the boot (kernel start -> /init running).
BOOT_MARKER = "dbgscaffold: init started"
RESULTS_PORT = "/dev/ttyS1"


@dataclass(frozen=True)
class Entry:
    """One archive member. `data` is the file's bytes or the symlink's target."""

    path: str  # relative, no leading slash: "bin/sh"
    kind: str  # "dir", "file" or "symlink"
    mode: int = 0o755  # permission bits only; the type comes from `kind`
    data: bytes = b""


@dataclass(frozen=True)
class FileSpec:
    """A caller's file for the guest: where it goes, what it holds, its mode."""

    dest: str  # absolute path in the guest: /lib/modules/foo.ko
    data: bytes
    mode: int = 0o644

    @classmethod
    def from_path(cls, dest: str, source: Path, mode: int | None = None) -> FileSpec:
        source = Path(source)
        return cls(dest, source.read_bytes(), mode if mode is not None else stat.S_IMODE(source.stat().st_mode))


_TYPE_BITS = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK}


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, mode: int, nlink: int, size: int, namesize: int) -> bytes:
    # newc: magic + 13 eight-digit hex fields; uid/gid 0 (root), mtime 0 (reproducible).
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0)
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def newc_archive(members: Iterable[Entry]) -> bytes:
    """Serialize entries (parents before children) into a newc archive with its trailer."""
    out = bytearray()
    ino = 1
    for e in list(members) + [Entry("TRAILER!!!", "file", 0)]:
        trailer = e.path == "TRAILER!!!"
        mode = 0 if trailer else _TYPE_BITS[e.kind] | (0o777 if e.kind == "symlink" else e.mode & 0o7777)
        name = e.path.encode() + b"\0"
        data = b"" if e.kind == "dir" else e.data
        nlink = 2 if e.kind == "dir" else 1
        out += _header(0 if trailer else ino, mode, 0 if trailer else nlink, len(data), len(name))
        out += name + _pad4(110 + len(name))
        out += data + _pad4(len(data))
        ino += 1
    out += b"\0" * (-len(out) % 512)  # cpio's block padding
    return bytes(out)


def read_newc(archive: bytes) -> list[Entry]:
    """Parse a newc archive back into entries (the trailer dropped). For tests and checks."""
    found: list[Entry] = []
    pos = 0
    while True:
        if archive[pos : pos + 6] != b"070701":
            raise ValueError(f"bad newc magic at offset {pos}")
        fields = [int(archive[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_start = pos + 110
        name = archive[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        data = archive[data_start : data_start + size]
        pos = data_start + size + (-size % 4)
        if name == "TRAILER!!!":
            return found
        kind = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink"}.get(stat.S_IFMT(mode))
        if kind is None:
            raise ValueError(f"{name}: unsupported file type {oct(stat.S_IFMT(mode))}")
        found.append(Entry(name, kind, stat.S_IMODE(mode), data))


def init_script(body: str, results_port: str = RESULTS_PORT) -> str:
    """/init: mount the pseudo filesystems, open fd 3 on the results port, run `body`.

    The boot stays quiet (kernel argument `quiet` saves console time under
    TCG); once /init runs it raises the console loglevel so WARNINGs and
    stack traces reach the captured console log. If `body` returns, /init
    powers off (POWER_OFF); if /init itself exits the kernel panics (that is the crash path).
    """
    return f"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs {DEBUGFS}
mount -t tmpfs tmpfs /tmp
echo 8 > /proc/sys/kernel/printk
echo '{BOOT_MARKER}'
stty -F {results_port} raw -echo 2>/dev/null
exec 3>{results_port}
{body.rstrip()}
{POWER_OFF}
"""


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def file_members(files: Sequence[FileSpec], root: str = "/") -> list[Entry]:
    """Archive members for `files` (dest paths under `root`, stored relative to it),
    each directory once, before what it holds."""
    prefix = root.rstrip("/") + "/"
    members: list[Entry] = []
    dirs: set[str] = set()
    for f in files:
        if not f.dest.startswith(prefix):
            raise ValueError(f"{f.dest}: these files live under {prefix}")
        rel = f.dest[len(prefix):]
        for parent in _parents(rel):
            if parent not in dirs:
                dirs.add(parent)
                members.append(Entry(parent, "dir", 0o755))
        members.append(Entry(rel, "file", f.mode, f.data))
    return members


def entries(init: str, busybox: bytes, files: Sequence[FileSpec] = (), applets: Sequence[str] = APPLETS) -> list[Entry]:
    """Everything in the archive, in order: directories, busybox, applets, /init, caller's files."""
    dirs = list(DIRS)
    for f in files:
        for parent in _parents(f.dest.lstrip("/")):
            if parent not in dirs:
                dirs.append(parent)
    out = [Entry(d, "dir", 0o755) for d in dirs]
    out.append(Entry("bin/busybox", "file", 0o755, busybox))
    out += [Entry(f"bin/{a}", "symlink", 0o777, b"busybox") for a in applets]
    out.append(Entry("init", "file", 0o755, init.encode()))
    out += [Entry(f.dest.lstrip("/"), "file", f.mode, f.data) for f in files]
    names = [e.path for e in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"initramfs: more than one entry for {', '.join(dup)}")
    return out


def content_key(members: Sequence[Entry]) -> str:
    h = hashlib.sha256()
    for e in members:
        for part in (e.path.encode(), e.kind.encode(), b"%o" % e.mode, hashlib.sha256(e.data).digest()):
            h.update(len(part).to_bytes(8, "little") + part)
    return h.hexdigest()[:24]


def build_initramfs(
    init: str,
    files: Sequence[FileSpec] = (),
    busybox: Path = BUSYBOX,
    applets: Sequence[str] = APPLETS,
    cache: Path | None = None,
) -> Path:
    """The cached archive for these inputs, written atomically on first use."""
    try:
        bb = Path(busybox).read_bytes()
    except OSError:
        raise EnvironmentProblem(f"{busybox}: error: no static busybox. Fix: apt-get install busybox-static.") from None
    if bb[:4] != b"\x7fELF" or is_dynamic(bb):
        raise EnvironmentProblem(f"{busybox}: error: busybox is not statically linked. Fix: apt-get install busybox-static.")
    members = entries(init, bb, files, applets)
    target = (cache or cache_dir()) / "initramfs" / f"{content_key(members)}.cpio"
    archive = newc_archive(members)  # ~2 ms: cheaper than trusting a cached file we cannot check otherwise
    try:
        if target.stat().st_size == len(archive) and target.read_bytes() == archive:
            return target
    except OSError:
        pass
    atomic_write(target, archive)  # new, or a damaged entry replaced
    return target


def is_dynamic(data: bytes) -> bool:
    """True if an ELF has a PT_INTERP segment (needs a dynamic loader the guest lacks)."""
    try:
        return any(ptype == elf.PT_INTERP for ptype, _, _ in elf.segments(elf.of_bytes(data)))
    except ValueError:
        return False
