"""kmemleak's findings about the modules under test: read from the check `no memory leaked`, each allocation site decoded.

The guest (ktap.sh's dbgs_no_leaks, after the last rmmod) sends each object
kmemleak found unreferenced whose backtrace passes through module code, as
/sys/kernel/debug/kmemleak shows it ("kmemleak: " diagnostics), and where each
module's code sections lay at each insmod ("section: NAME SECTION:ADDRESS").
Once a module is unloaded its frames are bare addresses (`0xffffffffa0008022`);
the sections turn them back into a function and an offset of its .ko
(decode.frames_at), and decode() into file:line. The allocation site is the
first module frame: the caller of kmalloc.

Pure: parse(), distinct(), summary(). Edge: decoded() (objdump, addr2line through decode.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .decode import Frame, decode, frames_at, module_frames

LEAK_PREFIX = "kmemleak: "
SECTION_PREFIX = "section: "
_OBJECT = re.compile(r"^unreferenced object (0x[0-9a-f]+) \(size (\d+)\):")
_COMM = re.compile(r'^\s+comm "(.*)", pid (\d+)')
_FRAME = re.compile(r"^\s+(?:\[<[^>]*>\] )?(\S.*)$")  # 6.1: "[<(____ptrval____)>] func+0x1f/0x53"; 6.12 without [<>]
_BACKTRACE = re.compile(r"^\s+backtrace")
_BARE = re.compile(r"^0x([0-9a-f]{16})$")
_SECTION = re.compile(r"^(\w+) (\S+):0x([0-9a-f]+)$")


@dataclass(frozen=True)
class Leak:
    """One object a module allocated and nobody points to any more."""

    address: str  # the object, as kmemleak printed it
    size: int
    comm: str  # the task that allocated it
    backtrace: tuple[str, ...]  # the allocation's frames as printed, innermost first (the whole text stays in the check's diagnostics)
    frames: tuple[Frame, ...] = ()  # its frames in the modules under test, decoded
    check: int = 0  # the check that reported it

    @property
    def site(self) -> Frame | None:
        """Where it was allocated: the first module frame (the caller of the allocator)."""
        return self.frames[0] if self.frames else None

    @property
    def title(self) -> str:
        """syzkaller's title for it: `memory leak in FUNCTION`."""
        return f"memory leak in {self.site.function if self.site else 'a module'}"

    def __str__(self) -> str:
        where = f" at {self.site}" if self.site else ""
        return f"{self.title}: {self.size} bytes (object {self.address}, allocated by {self.comm}){where}"


def parse(diagnostics: Sequence[str]) -> tuple[list[Leak], list[tuple[str, str, int]]]:
    """The leaks and the noted sections (module, section, address) in a check's diagnostics."""
    leaks: list[Leak] = []
    sections: list[tuple[str, str, int]] = []
    current: dict | None = None

    def close() -> None:
        if current is not None:
            leaks.append(Leak(current["address"], current["size"], current["comm"], tuple(current["trace"])))

    for d in diagnostics:
        if d.startswith(SECTION_PREFIX):
            m = _SECTION.match(d[len(SECTION_PREFIX):])
            if m and (m[1], m[2], int(m[3], 16)) not in sections:
                sections.append((m[1], m[2], int(m[3], 16)))
            continue
        if not d.startswith(LEAK_PREFIX):
            continue
        line = d[len(LEAK_PREFIX):]
        m = _OBJECT.match(line)
        if m:
            close()
            current = {"address": m[1], "size": int(m[2]), "comm": "?", "trace": []}
            continue
        if current is None:
            continue
        if m := _COMM.match(line):
            current["comm"] = m[1]
        elif _BACKTRACE.match(line):
            current["in_trace"] = True
        elif current.get("in_trace") and (m := _FRAME.match(line)):
            current["trace"].append(m[1])
    close()
    return leaks, sections


def decoded(leak: Leak, sections: Sequence[tuple[str, str, int]], kos: Mapping[str, Path], project: Path | None) -> Leak:
    """`leak` with its module frames (named `func+0x../0x.. [mod]`, or bare addresses
    inside a noted section) decoded to file:line."""
    frames: list[Frame] = []
    bare = [(i, int(m[1], 16)) for i, text in enumerate(leak.backtrace) if (m := _BARE.match(text))]
    at = dict(zip((i for i, _ in bare), frames_at([a for _, a in bare], sections, kos)))
    for i, text in enumerate(leak.backtrace):
        frame = at.get(i)
        if frame is None:
            named = module_frames(text, list(kos))
            frame = replace(named[0], exact=False) if named else None
        if frame is not None:
            frames.append(frame)
    return replace(leak, frames=tuple(decode(frames, kos, project)))


def distinct(leaks: Sequence[Leak]) -> list[tuple[Leak, int]]:
    """Each leak once per size and allocation site (a module loaded four times leaks four
    objects from one line), with how many objects it stands for."""
    count: dict[tuple, int] = {}
    first: dict[tuple, Leak] = {}
    for leak in leaks:
        key = (leak.size, leak.site and (leak.site.module, leak.site.function, leak.site.file, leak.site.line))
        count[key] = count.get(key, 0) + 1
        first.setdefault(key, leak)
    return [(first[k], n) for k, n in count.items()]


def summary(leaks: Sequence[Leak]) -> list[str]:
    """One line per distinct leak."""
    return [f"{leak}" + (f" ({n} objects like it)" if n > 1 else "") for leak, n in distinct(leaks)]
