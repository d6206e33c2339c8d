"""Find the kernel build trees (headers) installed on this machine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MODULES_ROOT = Path("/lib/modules")


@dataclass(frozen=True)
class KernelHeaders:
    release: str  # e.g. 6.1.0-56-amd64
    build_dir: Path  # what kbuild's -C wants: /lib/modules/<release>/build

    @property
    def version(self) -> tuple[int, ...]:
        """(major, minor, patch) from the release string, or () if unparsable."""
        m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", self.release)
        return tuple(int(g) for g in m.groups() if g is not None) if m else ()


def _version_key(h: KernelHeaders) -> tuple:
    return (h.version, h.release)


def find_headers(root: Path = MODULES_ROOT) -> list[KernelHeaders]:
    """Every /lib/modules/<release>/build that kbuild can use, oldest first."""
    found = []
    if root.is_dir():
        for entry in root.iterdir():
            build = entry / "build"
            if (build / "Makefile").is_file():
                found.append(KernelHeaders(entry.name, build))
    return sorted(found, key=_version_key)


def headers_for(series: str, root: Path = MODULES_ROOT) -> KernelHeaders | None:
    """The newest headers whose release starts with `series` ('6.1', '6.12')."""
    matches = [h for h in find_headers(root) if re.match(re.escape(series) + r"(\.|-|$)", h.release)]
    return matches[-1] if matches else None
