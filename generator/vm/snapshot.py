"""Saved agent VMs: boot once, then restore the waiting guest in ~0.15 s.

A snapshot is QEMU's migration stream of a guest that booted the agent
initramfs and said it is ready (~60 MB, ~0.5 s to save). It is only valid for
the very same kernel image, initramfs, machine settings and QEMU build, so its
name is the hash of all of them (snapshot_key); anything changed means a
different name, no snapshot, and a fresh boot that saves a new one.

Pure: snapshot_key(). Edges: qemu_version(), SnapshotStore.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

from ..paths import cache_dir, file_identity
from .qemu import Machine, argv

KEEP = 4  # snapshots kept on disk (each ~60 MB); the least recently used go first


def _file_identity(path: Path | None) -> str:
    """paths.file_identity() with the resolved path; raises OSError for a missing file (a key
    for no kernel is no key)."""
    if path is None:
        return ""
    resolved = Path(path).resolve(strict=True)
    return f"{resolved}:{file_identity(resolved)}"


def _content_identity(path: Path | None) -> str:
    """The file's content digest: a kernel rebuilt in place (same path, maybe the same
    size and mtime after a copy) never matches an older snapshot. Files in our cache
    (the extracted vmlinux, the initramfs) are named by their content already:
    hashing a 66 MB vmlinux would cost 0.1 s a run."""
    if path is None:
        return ""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(cache_dir().resolve()):
        return _file_identity(resolved)
    st = resolved.stat()
    return _digest(str(resolved), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"{size}:{h.hexdigest()}"  # ~20 ms for a 10 MB bzImage, once per process


def snapshot_key(machine: Machine, qemu_version: str) -> str:
    """What a saved state depends on: the argv (run-specific socket paths and
    -incoming left out), the kernel's and initrd's bytes, and QEMU's version."""
    stable = replace(
        machine, qmp="", incoming="",
        serial=tuple(replace(p, path="-" if p.backend in ("file", "socket") else p.path) for p in machine.serial),
    )
    h = hashlib.sha256()
    for part in (*argv(stable), _content_identity(machine.kernel), _content_identity(machine.initrd), qemu_version):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:24]


@lru_cache(maxsize=8)
def _version_of(qemu: str, identity: str) -> str:
    # Remembered on disk per binary identity: asking QEMU costs ~70 ms a run under load.
    memo = cache_dir() / "qemu-versions.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(identity), str):
        return known[identity]
    r = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30)
    version = r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else f"unknown ({identity})"
    if r.returncode == 0:
        known = {k: v for k, v in (known if isinstance(known, dict) else {}).items() if Path(k.split(":")[0]).exists()}
        known[identity] = version
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(known))
            os.replace(tmp, memo)
        except OSError:
            tmp.unlink(missing_ok=True)
    return version


def qemu_version(qemu: str) -> str:
    """`qemu --version`'s first line (cached per binary file identity)."""
    import shutil

    path = shutil.which(qemu) or qemu
    try:
        identity = _file_identity(Path(path))
    except OSError:
        identity = path
    return _version_of(path, identity)


@dataclass(frozen=True)
class SnapshotInfo:
    key: str
    kernel: str
    initrd: str
    qemu_version: str
    created: float
    save_seconds: float
    size: int


class SnapshotStore:
    def __init__(self, root: Path | None = None, keep: int = KEEP):
        self.root = Path(root) if root is not None else cache_dir() / "snapshots"
        self.keep = keep

    def state(self, key: str) -> Path:
        return self.root / f"{key}.state"

    def meta(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def find(self, key: str) -> Path | None:
        """The state file for `key` if a complete one exists (its metadata is
        written last, so a half-saved state is never found)."""
        state, meta = self.state(key), self.meta(key)
        if state.is_file() and meta.is_file():
            os.utime(meta)  # recently used: pruned last
            return state
        return None

    def temporary(self, key: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f"{key}.state.{os.getpid()}.tmp"

    def commit(self, key: str, tmp: Path, machine: Machine, version: str, save_seconds: float) -> SnapshotInfo:
        info = SnapshotInfo(key, str(machine.kernel), str(machine.initrd), version, time.time(), round(save_seconds, 3), tmp.stat().st_size)
        os.replace(tmp, self.state(key))
        meta_tmp = self.meta(key).with_suffix(f".json.{os.getpid()}.tmp")
        meta_tmp.write_text(json.dumps(asdict(info), indent=1))
        os.replace(meta_tmp, self.meta(key))
        self.prune()
        return info

    def discard(self, key: str) -> None:
        for p in (self.meta(key), self.state(key)):
            p.unlink(missing_ok=True)

    def prune(self) -> None:
        # Halves of a pair (one deleted by hand); not young ones: a commit may be between its two renames.
        for half, other in (("*.json", self.state), ("*.state", self.meta)):
            for p in self.root.glob(half):
                if not other(p.stem).is_file() and time.time() - p.stat().st_mtime > 60:
                    p.unlink(missing_ok=True)
        metas = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in metas[self.keep :]:
            self.discard(old.stem)
        for stale in self.root.glob("*.tmp"):  # a save killed half-way, over an hour ago
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink(missing_ok=True)
