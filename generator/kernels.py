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
        return release_version(self.release)


def release_version(release: str) -> tuple[int, ...]:
    """(major, minor[, patch]) from a release such as 6.12.117+deb12-amd64, or ()."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    return tuple(int(g) for g in m.groups() if g is not None) if m else ()


def parse_utsrelease(text: str) -> str | None:
    """UTS_RELEASE from include/generated/utsrelease.h: the release modules built
    against these headers carry in their vermagic (Debian 6.1's
    include/config/kernel.release says only '6.1.192')."""
    m = re.search(r'#define\s+UTS_RELEASE\s+"([^"]*)"', text)
    return m[1] if m else None


def makefile_version_fields(text: str) -> dict[str, str]:
    """The VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION assignments of a top-level
    kernel Makefile (those present; values as written, possibly empty)."""
    fields: dict[str, str] = {}
    for key, value in re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)[ \t]*$", text, re.M):
        fields.setdefault(key, value)  # the version block opens the Makefile: keep the first
    return fields


def parse_makefile_version(text: str) -> tuple[int, ...]:
    """(VERSION, PATCHLEVEL[, SUBLEVEL]) from a top-level kernel Makefile, or ()."""
    values = {k: v for k, v in makefile_version_fields(text).items() if v.isdigit()}
    if "VERSION" not in values or "PATCHLEVEL" not in values:
        return ()
    return tuple(int(values[k]) for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL") if k in values)


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
