"""A kernel report's frames decoded to file:line and the source line (and, in a generated module, to the spec entry).

A report names a module frame as `func+0xOFF/0xSIZE [module]` (the faulting
`RIP: 0010:` line, and each call-trace line; `? ` marks a guess). The symbol's
address in the unstripped .ko (objdump -t, with its section: init code lives in
.init.text) plus the offset is where it happened; addr2line reads the line from
the .ko's DWARF. A return address (a call-trace frame) points after its call,
so one byte back lands in the call itself. The DWARF names the file as it was
compiled, in dbgscaffold's build tree: the project's own file of the same
relative path is shown instead.

Pure: module_frames(), kernel_frames(), name_entries(). Edges: decode() (objdump, addr2line, reads the sources),
frames_at() (a bare address, from where the module's sections lay),
decode_kernel() (the kernel's own frames, from a debug kernel's vmlinux).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

_FRAME = re.compile(r"(?P<rip>RIP: [0-9a-f]{4}:)?(?P<guess>\? )?(?P<func>[A-Za-z_][\w.]*)\+0x(?P<off>[0-9a-f]+)/0x[0-9a-f]+ \[(?P<mod>\w+)\]")
_SYMBOL = re.compile(r"^([0-9a-f]+) (.{7}) (\S+)\s+[0-9a-f]+ (\S+)$", re.M)
_SECTION = re.compile(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s", re.M)


@dataclass(frozen=True)
class Frame:
    function: str
    offset: int
    module: str
    exact: bool  # the faulting instruction (RIP), not a return address
    reliable: bool = True  # not a '? ' guess of the unwinder
    file: str = ""  # relative to the project when it is one of its files (then `ours`), else as the DWARF says
    line: int = 0
    source: str = ""  # that line of the file, stripped (only for the project's files)
    ours: bool = False  # the line is in the project's own sources (not an inline from a kernel header)
    entry: str = ""  # a generated module's spec entry whose handler this is

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else f"{self.function}+{self.offset:#x} [{self.module}]"
        entry = f", entry '{self.entry}'" if self.entry else ""
        return f"{where} ({self.function}{entry})" + (f": {self.source}" if self.source else "")


SHARED_HANDLERS = ("textbuf_",)  # generated code serving every string entry


def name_entries(frames: Sequence[Frame], c_names: Sequence[tuple[str, str]], charged: str = "") -> list[Frame]:
    """Each frame of a generated module named with the spec entry whose handler it is: by
    its C name (`c_names`: (prefix, path), Spec.c_names(); the longest prefix wins, as
    entry 'a' is a prefix of 'a_b'), or for a shared handler (textbuf_write) the entry
    `charged`, that of the check during which it happened."""
    out = []
    for f in frames:
        base = f.function.split(".")[0]  # c_write.constprop.0 is c_write
        owners = [(len(prefix), path) for prefix, path in c_names if base == prefix or base.startswith(prefix + "_")]
        if owners:
            f = replace(f, entry=max(owners)[1])
        elif charged and base.startswith(SHARED_HANDLERS):
            f = replace(f, entry=charged)
        out.append(f)
    return out


_KERNEL_FRAME = re.compile(r"(?P<rip>RIP: [0-9a-f]{4}:)?(?P<guess>\? )?(?P<func>[A-Za-z_][\w.]*)\+0x(?P<off>[0-9a-f]+)/0x[0-9a-f]+(?! \[)(?=\s|$)", re.M)


def kernel_frames(excerpt: str) -> list[Frame]:
    """The frames of `excerpt` in the kernel itself (no `[module]`), in order, each once;
    Frame.module is "" and Frame.offset the offset in the function."""
    out: list[Frame] = []
    for m in _KERNEL_FRAME.finditer(excerpt):
        frame = Frame(m["func"], int(m["off"], 16), "", exact=bool(m["rip"]), reliable=not m["guess"])
        if not any((f.function, f.offset, f.exact) == (frame.function, frame.offset, frame.exact) for f in out):
            out.append(frame)
    return out


def module_frames(excerpt: str, modules: Sequence[str] = ()) -> list[Frame]:
    """The frames of `excerpt` in `modules` (all modules when empty), in order, each once."""
    out: list[Frame] = []
    for m in _FRAME.finditer(excerpt):
        if modules and m["mod"] not in modules:
            continue
        frame = Frame(m["func"], int(m["off"], 16), m["mod"], exact=bool(m["rip"]), reliable=not m["guess"])
        if not any((f.function, f.offset, f.module, f.exact) == (frame.function, frame.offset, frame.module, frame.exact) for f in out):
            out.append(frame)
    return out


def _symbols(ko: Path) -> dict[str, tuple[int, str]]:
    """{function: (address, section)} of the .ko's symbols."""
    table = subprocess.run(["objdump", "-t", str(ko)], capture_output=True, text=True, timeout=30, check=False).stdout
    return {name: (int(addr, 16), section) for addr, _flags, section, name in _SYMBOL.findall(table)}


def _functions(ko: Path) -> list[tuple[str, int, str]]:
    """(section, address, name) of the .ko's function symbols, sorted."""
    table = subprocess.run(["objdump", "-t", str(ko)], capture_output=True, text=True, timeout=30, check=False).stdout
    return sorted((section, int(addr, 16), name) for addr, flags, section, name in _SYMBOL.findall(table) if "F" in flags)


def _section_sizes(ko: Path) -> dict[str, int]:
    table = subprocess.run(["objdump", "-h", str(ko)], capture_output=True, text=True, timeout=30, check=False).stdout
    return {name: int(size, 16) for name, size in _SECTION.findall(table)}


def frames_at(addresses: Sequence[int], sections: Sequence[tuple[str, str, int]], kos: Mapping[str, Path]) -> list[Frame | None]:
    """The module frame (a return address) at each bare address, from where the modules'
    sections lay (module, section, address: the guest's /sys/module/NAME/sections) and
    their .ko files; None for an address in none of them, or in two that differ. A backtrace shows bare
    addresses for a module that is no longer loaded (kmemleak's, after rmmod)."""
    if not shutil.which("objdump"):
        return [None] * len(addresses)
    sizes: dict[str, dict[str, int]] = {}
    functions: dict[str, list[tuple[str, int, str]]] = {}
    out: list[Frame | None] = []
    for address in addresses:
        found: set[Frame] = set()
        for module, section, base in sections:
            ko = kos.get(module)
            if ko is None or not Path(ko).is_file():
                continue
            try:
                if module not in sizes:
                    sizes[module], functions[module] = _section_sizes(Path(ko)), _functions(Path(ko))
            except (OSError, subprocess.SubprocessError):
                sizes[module], functions[module] = {}, []
            if base <= address < base + sizes[module].get(section, 0):
                offset = address - base
                before = [(a, name) for s, a, name in functions[module] if s == section and a <= offset]
                if before:
                    start, name = max(before)
                    found.add(Frame(name, offset - start, module, exact=False))
        # Freed module memory is reused: two loads may have put different code there. Not a guess.
        out.append(found.pop() if len(found) == 1 else None)
    return out


def _lines(ko: Path, section: str | None, address: int) -> list[tuple[str, int]]:
    """(file, line) of the address (relative to `section` in a .ko; absolute in a vmlinux,
    section None), the innermost first: with -i, each function it was inlined into
    (kzalloc() in slab.h, inlined into the module's own function)."""
    where = ["-j", section] if section else []
    out = subprocess.run(["addr2line", "-i", "-e", str(ko), *where, hex(address)], capture_output=True, text=True,
                         timeout=60, check=False).stdout.strip().splitlines()
    found = [re.match(r"^(.*?):(\d+)", x) for x in out]
    return [(m[1], int(m[2])) for m in found if m and m[1] != "??"]


def _in_project(path: str, project: Path | None) -> Path | None:
    """The project's file for a path the DWARF names: its longest tail that exists there,
    a regular file inside the project. The DWARF is the submission's to write (`#line
    1 "x/../../etc/shadow"`): no `..`, no symlink out, or we would quote a host file."""
    if project is None or not path:
        return None
    root = project.resolve()
    parts = Path(path).parts
    for i in range(1, len(parts)):  # longest first: user/x.c before x.c
        tail = parts[i:]
        if ".." in tail:
            continue
        candidate = project.joinpath(*tail)
        if candidate.is_file() and not candidate.is_symlink() and root in candidate.resolve().parents:
            return candidate
    return None


def decode(frames: Sequence[Frame], kos: Mapping[str, Path], project: Path | None = None) -> list[Frame]:
    """Each frame with its file, line and source line where the module's unstripped
    .ko (`kos[module]`) has DWARF for it; the others as they were."""
    if not frames or not shutil.which("objdump") or not shutil.which("addr2line"):
        return list(frames)
    symbols: dict[str, dict[str, tuple[int, str]]] = {}
    out = []
    for f in frames:
        ko = kos.get(f.module)
        if ko is None or not Path(ko).is_file():
            out.append(f)
            continue
        try:
            if f.module not in symbols:
                symbols[f.module] = _symbols(Path(ko))
            if f.function not in symbols[f.module]:
                out.append(f)
                continue
            address, section = symbols[f.module][f.function]
            places = _lines(Path(ko), section, address + f.offset - (0 if f.exact else 1)) or [("", 0)]
        except (OSError, subprocess.SubprocessError):
            out.append(f)
            continue
        # the project's own line, where an inline of a kernel header sits in it
        file, line = next(((p, n) for p, n in places if _in_project(p, project) is not None), places[0])
        found = _in_project(file, project)
        shown, source = file, ""
        if found is not None and project is not None:
            shown = str(found.relative_to(project))
            lines = found.read_text(errors="replace").splitlines()
            source = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        out.append(replace(f, file=shown, line=line, source=source, ours=found is not None))
    return out


def has_line_tables(vmlinux: Path) -> bool:
    """Was the kernel built with DWARF (a debug kernel is; Debian's image is not)?"""
    try:
        return Path(vmlinux).is_file() and ".debug_line" in _section_sizes(Path(vmlinux))
    except (OSError, subprocess.SubprocessError):
        return False


def decode_kernel(frames: Sequence[Frame], vmlinux: Path, source: Path | None = None) -> list[Frame]:
    """Each kernel frame with its file and line from `vmlinux`'s DWARF (in the function
    the frame names, not in what was inlined into it), the file relative to the kernel `source` tree when it lies in it; the
    others as they were (so is a name several static functions share: which one is
    not known)."""
    if not frames or not shutil.which("nm") or not shutil.which("addr2line"):
        return list(frames)
    table = subprocess.run(["nm", "-S", str(vmlinux)], capture_output=True, text=True, timeout=120, check=False).stdout
    starts: dict[str, list[int]] = {}
    for row in table.splitlines():
        parts = row.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            starts.setdefault(parts[3], []).append(int(parts[0], 16))
    out = []
    for f in frames:
        found = starts.get(f.function, [])
        if len(found) != 1:
            out.append(f)
            continue
        places = _lines(Path(vmlinux), None, found[0] + f.offset - (0 if f.exact else 1))
        if not places:
            out.append(f)
            continue
        file, line = places[-1]  # the outermost: the line in the function the frame names
        if source is not None and file.startswith(str(source).rstrip("/") + "/"):
            file = file[len(str(source).rstrip("/")) + 1:]
        out.append(replace(f, file=file, line=line))
    return out
