"""Where dbgscaffold keeps things between runs, and whether what is there can be trusted.

The cache holds what later runs load and run: pickled Kconfig trees and Jinja bytecode
(loading either runs code), kernels, initramfs images and VM snapshots (they decide what
a check reports). So the cache is private: created 0700, used only when it is ours, and a
code-bearing file is loaded only when no other user could have written it (trusted()).
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

from .errors import EnvironmentProblem, UserError

CACHE_MODE = 0o700


class ForeignCache(EnvironmentProblem):
    """The cache directory belongs to another user (exit 4)."""


def cache_location() -> Path:
    """$DBGSCAFFOLD_CACHE, else $XDG_CACHE_HOME/dbgscaffold, else ~/.cache/dbgscaffold."""
    explicit = os.environ.get("DBGSCAFFOLD_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dbgscaffold"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def cache_dir() -> Path:
    """The cache's root: created 0700 when missing (an older, wider one of ours is narrowed).
    Raises ForeignCache when it belongs to another user: what they wrote there would run as
    us. A root that cannot be created (a read-only disk) is returned as it is: writing into
    it fails later with its own message."""
    root = cache_location()
    try:
        info = root.stat()
    except FileNotFoundError:
        try:
            root.mkdir(mode=CACHE_MODE, parents=True, exist_ok=True)
            root.chmod(CACHE_MODE)  # mkdir's mode passes through the umask
        except OSError:
            pass
        return root
    except OSError:
        return root
    if info.st_uid != os.geteuid():
        raise ForeignCache(
            f"{root}: error: the cache belongs to {_owner(info.st_uid)}, not to you ({_owner(os.geteuid())}); "
            "what another user wrote there (pickled Kconfig trees, kernels, VM snapshots) would run as you. "
            "Fix: set DBGSCAFFOLD_CACHE to a directory of your own (or remove that one).")
    if stat.S_IMODE(info.st_mode) & 0o077:
        try:
            root.chmod(CACHE_MODE)
        except OSError:
            pass
    return root


def trusted(path: Path) -> bool:
    """True when no user but us (or root) could have written `path`: it and every directory
    from the cache's root down to it are ours (or root's) and writable by no one else.
    Loading a pickle or bytecode that fails this would run someone else's code."""
    root = cache_location().resolve()
    me = os.geteuid()
    try:
        path = Path(path).resolve()
        chain = [path, *[p for p in path.parents if p == root or root in p.parents]]
        if root not in chain:
            return False
        for p in chain:
            info = p.stat()
            if info.st_uid not in (me, 0) or stat.S_IMODE(info.st_mode) & 0o022:
                return False
    except OSError:
        return False
    return True


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (a temporary file renamed over it): a reader never
    sees half of it, and a failure (a full disk) leaves nothing behind. The file gets the
    mode a plain open() would give. The OSError raised names `path` (a failed write()
    names no file). A path that is no regular file (--json /dev/stdout, a fifo) is written
    in place; a symlink's target is what is replaced."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_or_empty(path: Path) -> str:
    """A text file's content, or "" when it cannot be read."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def file_identity(path: Path) -> str:
    """"size:mtime_ns" of a file, "-" when there is none: what changes when it is rewritten."""
    try:
        info = Path(path).stat()
    except OSError:
        return "-"
    return f"{info.st_size}:{info.st_mtime_ns}"


def templates_root() -> Path:
    """module_templates/, inside the installed package or beside generator/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "module_templates", here.parent / "module_templates"):
        if (candidate / "module").is_dir():
            return candidate
    raise UserError(f"dbgscaffold is installed without its templates (looked in {here}); reinstall it.")
