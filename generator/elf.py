"""Just enough ELF for dbgscaffold: the file header, program headers, section names
and notes, of either class and byte order.

Everything reads through `read(offset, size) -> bytes` (fewer bytes at the end of
the file), so a 600 MB vmlinux is never loaded whole; of_bytes() adapts bytes
already in memory. Malformed input raises ValueError. Pure.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Reader = Callable[[int, int], bytes]

PT_INTERP = 3
PT_NOTE = 4
SHT_NOTE = 7
_SHN_XINDEX = 0xFFFF
_MAX_SECTIONS = 1 << 20
_MAX_SHSTRTAB = 16 << 20
_MAX_NOTES = 1 << 20


def of_bytes(data: bytes) -> Reader:
    return lambda offset, size: data[offset : offset + size]


@dataclass(frozen=True)
class Header:
    elf64: bool
    order: str  # struct byte order: "<" or ">"
    phoff: int
    shoff: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int


def header(read: Reader) -> Header:
    ident = read(0, 16)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    if ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise ValueError("unknown ELF class or byte order")
    elf64, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    size, layout, offsets_at = (64, "QQ", 0x20) if elf64 else (52, "II", 0x1C)
    raw = read(0, size)
    if len(raw) < size:
        raise ValueError("truncated ELF header")
    phoff, shoff = struct.unpack_from(order + layout, raw, offsets_at)
    counts_at = offsets_at + struct.calcsize(layout) + 6  # past e_flags and e_ehsize
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(order + "HHHHH", raw, counts_at)
    return Header(elf64, order, phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx)


def segments(read: Reader, h: Header | None = None) -> list[tuple[int, int, int]]:
    """(p_type, p_offset, p_filesz) of every program header."""
    h = h or header(read)
    fmt = struct.Struct(h.order + ("I4xQ16xQ" if h.elf64 else "II8xI"))
    if h.phnum and h.phentsize < fmt.size:
        raise ValueError("program header entries too small")
    table = read(h.phoff, h.phnum * h.phentsize) if h.phnum else b""
    if len(table) < h.phnum * h.phentsize:
        raise ValueError("truncated program header table")
    return [fmt.unpack_from(table, i * h.phentsize) for i in range(h.phnum)]


def _section_headers(read: Reader, h: Header) -> list[tuple[int, ...]]:
    """(sh_name, sh_type, sh_offset, sh_size, sh_link) of every section header."""
    if h.shoff == 0:
        return []
    fmt = struct.Struct(h.order + ("II16xQQI20x" if h.elf64 else "II8xIII12x"))
    if h.shentsize < fmt.size:
        raise ValueError("section header entries too small")
    shnum = h.shnum
    if shnum == 0:  # more than 0xff00 sections: the count lives in section 0's sh_size
        first = read(h.shoff, fmt.size)
        if len(first) < fmt.size:
            raise ValueError("truncated section header table")
        shnum = fmt.unpack(first)[3]
    if not 0 < shnum <= _MAX_SECTIONS:
        raise ValueError("implausible section count")
    table = read(h.shoff, shnum * h.shentsize)
    if len(table) < shnum * h.shentsize:
        raise ValueError("truncated section header table")
    return [fmt.unpack_from(table, i * h.shentsize) for i in range(shnum)]


def _named_sections(read: Reader) -> list[tuple[str, tuple[int, ...]]]:
    """(name, its header tuple) of every section, in order."""
    h = header(read)
    sections = _section_headers(read, h)
    if not sections:
        return []
    strndx = sections[0][4] if h.shstrndx == _SHN_XINDEX else h.shstrndx  # sh_link of section 0
    if strndx >= len(sections):
        raise ValueError("implausible section name table index")
    strtab = read(sections[strndx][2], min(sections[strndx][3], _MAX_SHSTRTAB))
    names = []
    for name_at, *_ in sections:
        stop = strtab.find(b"\0", name_at)
        names.append(strtab[name_at : stop if stop >= 0 else len(strtab)].decode("ascii", "replace"))
    return list(zip(names, sections))


def section_names(read: Reader) -> list[str]:
    """The name of every section, in order (reads the headers and the name table only)."""
    return [name for name, _ in _named_sections(read)]


def section(read: Reader, wanted: str, limit: int = _MAX_SHSTRTAB) -> bytes | None:
    """The contents of the first section called `wanted` (at most `limit` bytes), or None."""
    for name, (_, _, offset, size, _) in _named_sections(read):
        if name == wanted:
            return read(offset, min(size, limit))
    return None


def notes(read: Reader) -> Iterator[tuple[bytes, int, bytes]]:
    """(name, type, desc) of every note in the PT_NOTE segments, else in the SHT_NOTE sections."""
    h = header(read)
    regions = [(off, size) for ptype, off, size in segments(read, h) if ptype == PT_NOTE]
    if not regions:
        regions = [(off, size) for _, stype, off, size, _ in _section_headers(read, h) if stype == SHT_NOTE]
    word = struct.Struct(h.order + "III")
    for off, size in regions:
        data = read(off, min(size, _MAX_NOTES))
        pos = 0
        while pos + word.size <= len(data):
            namesz, descsz, ntype = word.unpack_from(data, pos)
            name_at = pos + word.size
            desc_at = name_at + ((namesz + 3) & ~3)
            yield data[name_at : name_at + namesz].rstrip(b"\0"), ntype, data[desc_at : desc_at + descsz]
            pos = desc_at + ((descsz + 3) & ~3)
