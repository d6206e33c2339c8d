"""Read and validate a `dbgscaffold.toml` spec into frozen dataclasses.

`parse_spec()` is pure (text in, Spec or SpecError out); `load_spec()` adds
the file reading.  Every problem carries the file, the line, the entry it is
about, what is wrong and how to fix it, and all problems are reported at once.
"""

from __future__ import annotations

import difflib
import keyword
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .c_literals import c_escaped_length
from .debugfs_types import (
    COMMON_KEYS,
    MAX_ARRAY_LENGTH,
    MAX_BLOB_BYTES,
    MAX_CUSTOM_VALUE,
    MAX_STRING_SIZE,
    TYPES,
    DebugfsType,
    Kind,
    Writes,
)
from .errors import UserError
from .inputs import read_input
from .problems import Problem, SpecError, syntax_problem
from .test_table import TestTable, parse_test_table

MODULE_KEYS = ("name", "description", "author", "license", "version", "root")
SPEC_FILE = "dbgscaffold.toml"  # a project's spec, beside its sources
TOP_KEYS = ("module", "entry", "test")
ALL_ENTRY_KEYS = sorted(COMMON_KEYS | {k for t in TYPES.values() for k in t.keys})

# Module licenses the kernel treats as GPL-compatible (include/linux/license.h),
# with the SPDX expression the generated files carry.
GPL_LICENSES = {
    "GPL": "GPL-2.0",
    "GPL v2": "GPL-2.0",
    "GPL and additional rights": "GPL-2.0",
    "Dual BSD/GPL": "GPL-2.0 OR BSD-3-Clause",
    "Dual MIT/GPL": "GPL-2.0 OR MIT",
    "Dual MPL/GPL": "GPL-2.0 OR MPL-1.1",
}
MODULE_NAME_MAX = 55  # MODULE_NAME_LEN is 56 including the NUL
COMPONENT_RE = re.compile(r"^[A-Za-z0-9_.-]+\Z")
MODULE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*\Z")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+~_-]*\Z")
MODE_RE = re.compile(r"^0[0-7]{3}\Z")
# The kernel allows 255-byte names; 64 keeps every generated line of C within
# checkpatch's 100 columns.
NAME_MAX = 64
C_NAME_MAX = 55  # <module>_<entry> identifiers, for the same reason
# Names that would clash with C keywords, the kernel's own objects or the
# files we generate next to the module.
RESERVED_NAMES = frozenset(keyword.kwlist) | frozenset(
    """auto break case char const continue default do double else enum extern float
    for goto if inline int long register restrict return short signed sizeof static
    struct switch typedef union unsigned void volatile while bool true false
    kernel module vmlinux linux debugfs tracefs sysfs procfs built_in modules modpost""".split()
)


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    description: str
    author: str
    license: str
    version: str
    root: str

    @property
    def spdx(self) -> str:
        return GPL_LICENSES[self.license]


@dataclass(frozen=True)
class Entry:
    index: int  # 1-based position in the spec, for messages
    line: int
    path: str  # normalised, relative to the module's root directory
    type: DebugfsType
    mode: int | None  # None for directories: debugfs_create_dir takes no mode
    value: object = None  # int, bool, bytes (blob/string/custom) or tuple[int, ...]
    size: int | None = None  # string buffer size, NUL included
    length: int | None = None  # u32_array element count

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    @property
    def basename(self) -> str:
        return self.components[-1]

    @property
    def parent(self) -> str:
        return "/".join(self.components[:-1])

    @property
    def cname(self) -> str:
        """C identifier fragment for this entry: 'subdir/c' -> 'subdir_c'."""
        return cname_of(self.path)

    @property
    def mode_octal(self) -> str:
        return "" if self.mode is None else f"{self.mode:04o}"


def cname_of(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", path)


@dataclass(frozen=True)
class Spec:
    module: ModuleInfo
    entries: tuple[Entry, ...]
    source_name: str
    text: str  # the spec as written (after any name override), copied into the project
    warnings: tuple[Problem, ...] = field(default=())
    test: TestTable = field(default=TestTable())  # how `dbgscaffold test` loads it

    @property
    def directories(self) -> tuple[str, ...]:
        """Every directory below the root, explicit or implied, parents first."""
        seen: dict[str, None] = {}
        for entry in self.entries:
            comps = entry.components
            upto = len(comps) if entry.type.kind is Kind.DIR else len(comps) - 1
            for i in range(1, upto + 1):
                seen.setdefault("/".join(comps[:i]), None)
        return tuple(seen)

    @property
    def files(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.type.kind is not Kind.DIR)

    def of_kind(self, *kinds: Kind) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.type.kind in kinds)

    def c_names(self) -> tuple[tuple[str, str], ...]:
        """(C name, path) of each file entry: the generated module's variable for it and
        the prefix of its handlers (<module>_<entry>_read, ..._show)."""
        return tuple((f"{self.module.name}_{e.cname}", e.path) for e in self.files)


# ---------------------------------------------------------------------------
# Where things are in the text: tomllib gives values, not positions.


@dataclass
class _Table:
    header_line: int
    keys: dict[str, int] = field(default_factory=dict)


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]*?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[.=]""")


@dataclass
class _Locator:
    """Best-effort map from tables and keys to 1-based line numbers."""

    top: _Table
    module: _Table | None
    entries: list[_Table]

    @classmethod
    def scan(cls, text: str) -> _Locator:
        top = _Table(0)
        module: _Table | None = None
        entries: list[_Table] = []
        current = top
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER_RE.match(line)
            if header:
                current = _Table(number)
                top.keys.setdefault(header.group(2).split(".")[0].strip().strip("\"'"), number)
                if header.group(1) == "[[" and header.group(2) == "entry":
                    entries.append(current)
                elif header.group(1) == "[" and header.group(2) == "module":
                    module = current
                continue
            key = _KEY_RE.match(line)
            if key:
                name = next(g for g in key.groups() if g is not None)
                current.keys.setdefault(name, number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote
                    break
        return cls(top, module, entries)

    def module_line(self, key: str | None = None) -> int:
        if self.module is None:
            return self.top.keys.get("module", 1)
        if key is not None and key in self.module.keys:
            return self.module.keys[key]
        return self.module.header_line

    def entry_line(self, index: int, key: str | None = None) -> int:
        if 0 <= index < len(self.entries):
            table = self.entries[index]
            if key is not None and key in table.keys:
                return table.keys[key]
            return table.header_line
        return self.top.keys.get("entry", 0)


# ---------------------------------------------------------------------------


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Collector:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def error(self, line: int, where: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.file, line, where, message, fix))

    def warn(self, line: int, where: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.file, line, where, message, fix, warning=True))

    @property
    def has_errors(self) -> bool:
        return any(not p.warning for p in self.problems)


def check_component(component: str) -> str:
    """Return why a path component is invalid, or '' when it is fine."""
    if component == "":
        return "has an empty component (leading, trailing or doubled '/')"
    if component in (".", ".."):
        return f"has a '{component}' component"
    if not COMPONENT_RE.match(component):
        bad = sorted({c for c in component if not re.match(r"[A-Za-z0-9_.-]", c)})
        shown = " ".join(repr(c) for c in bad)
        return f"component '{component}' has characters outside [A-Za-z0-9_.-]: {shown}"
    if len(component) > NAME_MAX:
        return f"component '{component[:20]}...' is {len(component)} characters long (at most {NAME_MAX})"
    return ""


def check_module_name(name: str) -> str:
    """Return why `name` cannot be a module name, or '' when it can."""
    if not MODULE_NAME_RE.match(name):
        return (
            f"module name '{name}' is not a lower-case C identifier "
            "(letters a-z, digits and '_', not starting with a digit)"
        )
    if len(name) > MODULE_NAME_MAX:
        return f"module name is {len(name)} characters long; the kernel allows {MODULE_NAME_MAX}"
    if name in RESERVED_NAMES:
        return f"module name '{name}' is reserved (a C keyword or a name the kernel build uses)"
    return ""


def parse_spec(text: str, source_name: str = "dbgscaffold.toml", name_override: str | None = None) -> Spec:
    """Validate spec text; return a Spec or raise SpecError listing every problem."""
    out = _Collector(source_name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([syntax_problem(source_name, exc)]) from None
    except RecursionError:
        raise SpecError([Problem(source_name, 0, "", "TOML syntax error: arrays or tables nested too deeply",
                                 "a spec needs at most one level of nesting.")]) from None
    where_file = ""
    loc = _Locator.scan(text)

    for key in data:
        if key not in TOP_KEYS:
            hint = _did_you_mean(key, TOP_KEYS)
            out.error(
                loc.top.keys.get(key, 1),
                where_file,
                f"unknown top-level key '{key}'" + (f"; {hint}" if hint else ""),
                "the spec has a [module] table, [[entry]] tables and a [test] table only.",
            )

    module = _parse_module(data.get("module"), loc, out, name_override)
    entries = _parse_entries(data.get("entry", []), loc, out)
    _check_tree(module, entries, out)
    test, problems = parse_test_table(data.get("test"), text, source_name)
    out.problems += problems
    if out.has_errors or module is None:
        raise SpecError(out.problems)
    if name_override is not None:
        text = _rewrite_module_name(text, loc, name_override, data, source_name)
    warnings = tuple(p for p in out.problems if p.warning)
    return Spec(module, tuple(entries), source_name, text, warnings, test)


def _string_key(table: dict, key: str, where: str, line: int, out: _Collector) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        out.error(line, where, f"'{key}' must be a string, not {_describe(value)}", f'write {key} = "..."')
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        out.error(line, where, f"'{key}' contains control characters", "keep it to one printable line.")
        return None
    return value


def _parse_module(raw: object, loc: _Locator, out: _Collector, name_override: str | None) -> ModuleInfo | None:
    where = "[module]"
    if raw is None:
        raw = {}
        if name_override is None:
            out.error(0, "", "the spec has no [module] table", 'add [module] with at least name = "mymod".')
            return None
    if not isinstance(raw, dict):
        out.error(loc.module_line(), where, f"'module' must be a table, not {_describe(raw)}", "write a [module] table.")
        return None
    for key in raw:
        if key not in MODULE_KEYS:
            hint = _did_you_mean(key, MODULE_KEYS)
            out.error(
                loc.module_line(key),
                where,
                f"unknown key '{key}'" + (f"; {hint}" if hint else ""),
                "valid keys: " + ", ".join(MODULE_KEYS) + ".",
            )
    values = {k: _string_key(raw, k, where, loc.module_line(k), out) for k in MODULE_KEYS}
    name = name_override if name_override is not None else values["name"]
    ok = True
    if name is None:
        if "name" not in raw:
            out.error(loc.module_line(), where, "missing required key 'name'", 'add name = "mymod" (a C identifier).')
        return None
    why = check_module_name(name)
    if why:
        line = 0 if name_override is not None else loc.module_line("name")
        where_name = "module name from the command line" if name_override is not None else where
        out.error(line, where_name, why, "use something like 'mydebug' or 'my_debug'.")
        ok = False
    license_ = values["license"] if values["license"] is not None else "GPL"
    if license_ not in GPL_LICENSES:
        out.error(
            loc.module_line("license"),
            where,
            f"license '{license_}' is not GPL-compatible; debugfs exports its symbols to GPL modules only",
            "use one of: " + ", ".join(f'"{k}"' for k in GPL_LICENSES) + ".",
        )
        ok = False
    # MODULE_DESCRIPTION("...") and MODULE_AUTHOR("...") must fit 100 columns.
    for key, limit in (("description", 78), ("author", 84)):
        text = values[key]
        if text is not None and c_escaped_length(text) > limit:
            out.error(
                loc.module_line(key),
                where,
                f"'{key}' takes {c_escaped_length(text)} columns as a C string (non-ASCII bytes count 4 each); "
                f"at most {limit} fit MODULE_{key.upper()}() on one line",
                "shorten it.",
            )
            ok = False
    version = values["version"] if values["version"] is not None else "0.1.0"
    if not VERSION_RE.match(version):
        out.error(
            loc.module_line("version"), where, f"version '{version}' is not a plain version string", 'use e.g. "0.1.0".'
        )
        ok = False
    root = values["root"] if values["root"] is not None else name
    why = check_component(root)
    if values["root"] is not None and why:
        out.error(loc.module_line("root"), where, f"root directory {why}", "use one name such as 'mydebug'.")
        ok = False
    if not ok:
        return None
    return ModuleInfo(
        name=name,
        description=values["description"] or f"{name}: a debugfs tree generated by dbgscaffold",
        author=values["author"] or "dbgscaffold user",
        license=license_,
        version=version,
        root=root,
    )


def _parse_entries(raw: object, loc: _Locator, out: _Collector) -> list[Entry]:
    if isinstance(raw, dict):
        out.error(loc.top.keys.get("entry", 1), "", "'entry' must be an array of tables", "write each entry as [[entry]], with two brackets.")
        return []
    if not isinstance(raw, list):
        out.error(loc.top.keys.get("entry", 1), "", "'entry' must be an array of tables", "write each entry as [[entry]].")
        return []
    entries = []
    for i, item in enumerate(raw):
        entry = _parse_entry(i, item, loc, out)
        if entry is not None:
            entries.append(entry)
    return entries


def _parse_entry(i: int, item: object, loc: _Locator, out: _Collector) -> Entry | None:
    header = loc.entry_line(i)
    if not isinstance(item, dict):
        out.error(header, f"entry #{i + 1}", f"an entry must be a table, not {_describe(item)}", "write it as [[entry]].")
        return None
    raw_path = item.get("path")
    where = f"entry #{i + 1}" + (f" '{raw_path}'" if isinstance(raw_path, str) else "")

    def line(key: str | None = None) -> int:
        return loc.entry_line(i, key)

    for key in item:
        if key not in ALL_ENTRY_KEYS:
            hint = _did_you_mean(key, ALL_ENTRY_KEYS)
            out.error(line(key), where, f"unknown key '{key}'" + (f"; {hint}" if hint else ""), "valid keys: " + ", ".join(ALL_ENTRY_KEYS) + ".")

    # path
    path = None
    if raw_path is None:
        out.error(header, where, "missing required key 'path'", 'add path = "name" (relative to the module\'s root directory).')
    elif not isinstance(raw_path, str):
        out.error(line("path"), where, f"'path' must be a string, not {_describe(raw_path)}", 'write path = "dir/name".')
    else:
        problems = [check_component(c) for c in raw_path.split("/")]
        problems = [p for p in problems if p]
        if problems:
            out.error(line("path"), where, "path " + problems[0], "use names of letters, digits, '_', '.', '-' separated by single '/'.")
        else:
            path = raw_path

    # type
    raw_type = item.get("type")
    dtype = None
    if raw_type is None:
        out.error(header, where, "missing required key 'type'", "add type = one of: " + ", ".join(TYPES) + ".")
    elif not isinstance(raw_type, str) or raw_type not in TYPES:
        shown = raw_type if isinstance(raw_type, str) else repr(raw_type)
        hint = _did_you_mean(raw_type, list(TYPES)) if isinstance(raw_type, str) else ""
        out.error(line("type"), where, f"unknown type '{shown}'" + (f"; {hint}" if hint else ""), "use one of: " + ", ".join(TYPES) + ".")
    else:
        dtype = TYPES[raw_type]

    if dtype is None:
        return None
    allowed = (COMMON_KEYS - {"mode"} if dtype.kind is Kind.DIR else COMMON_KEYS) | dtype.keys
    for key in item:
        if key in ALL_ENTRY_KEYS and key not in allowed:
            users = sorted(t.name for t in TYPES.values() if key in t.keys)
            if dtype.kind is Kind.DIR and key == "mode":
                out.error(line(key), where, "a directory takes no mode: debugfs_create_dir() always makes it 0755", "remove the mode line.")
            else:
                out.error(line(key), where, f"key '{key}' does not apply to type '{dtype.name}'", f"remove it ('{key}' applies to: {', '.join(users)}).")

    mode = _parse_mode(item, dtype, where, line, out)
    value, size, length = _parse_value(item, dtype, where, line, out)
    if path is None:
        return None
    # An entry with a bad mode or value still takes part in the tree checks
    # (duplicates, file/directory clashes) so that every problem is reported.
    return Entry(index=i + 1, line=header, path=path, type=dtype, mode=mode, value=value, size=size, length=length)


def _suggest_mode(mode: int, dtype: DebugfsType) -> str:
    """A mode close to `mode` that passes every rule: no execute bits, only the
    owner may write, and nobody may write a read-only type."""
    keep = 0o644 if dtype.writes is not Writes.NO else 0o444
    return f"{mode & keep or 0o400:04o}"


def _parse_mode(item: dict, dtype: DebugfsType, where: str, line, out: _Collector) -> int | None:
    if dtype.kind is Kind.DIR:
        return None
    raw = item.get("mode", dtype.default_mode)
    if _is_int(raw):
        out.error(line("mode"), where, f"mode must be a quoted 4-digit octal string, not the integer {raw}", f'write mode = "{dtype.default_mode}".')
        return None
    if not isinstance(raw, str) or not MODE_RE.match(raw):
        shown = raw if isinstance(raw, str) else _describe(raw)
        fix = 'write four octal digits starting with 0, e.g. mode = "0644" or "0444".'
        if isinstance(raw, str) and re.fullmatch(r"[0-7]{3}", raw):
            fix = f'write mode = "0{raw}".'
        out.error(line("mode"), where, f"mode '{shown}' is not a 4-digit octal string", fix)
        return None
    mode = int(raw, 8)
    ln = line("mode")
    if mode & 0o002:
        out.error(ln,
                  where,
                  f"mode {raw} lets every user write the file; debugfs files must not be world-writable (checkpatch reports it)",
                  f'use "{_suggest_mode(mode, dtype)}" or a stricter mode.')
    if mode & 0o111:
        out.error(ln, where, f"mode {raw} has execute bits; debugfs files are not executable", f'use "{_suggest_mode(mode, dtype)}".')
    if mode & 0o020 and not mode & 0o002:
        out.warn(ln, where, f"mode {raw} lets the group write the file", "prefer 0644 or 0600 unless a group really needs to write.")
    if dtype.writes is Writes.NO and mode & 0o222:
        out.error(ln, where, f"a {dtype.name} entry is read-only, but mode {raw} has write bits", f'use "{_suggest_mode(mode, dtype)}".')
    if dtype.writes is Writes.SINCE_6_8 and mode & 0o222:
        out.warn(ln,
                 where,
                 f"a blob is writable only on Linux 6.8 and later; older kernels make it read-only whatever mode {raw} says",
                 "use 0444 if the module must behave the same everywhere.")
    if not mode & 0o666:
        out.error(ln, where, f"mode {raw} gives nobody read or write access", 'use e.g. "0444" or "0600".')
    return mode


def _parse_value(item: dict, dtype: DebugfsType, where: str, line, out: _Collector):
    """Return (value, size, length) for the entry's type, reporting problems."""
    kind = dtype.kind
    raw = item.get("value")
    ln = line("value")
    if kind in (Kind.INTEGER, Kind.BOOL):
        if raw is None:
            return (False if kind is Kind.BOOL else 0), None, None
        if kind is Kind.BOOL:
            if not isinstance(raw, bool):
                out.error(ln, where, f"a bool value must be true or false, not {_describe(raw)}", "write value = true or value = false (no quotes).")
            return raw, None, None
        if not _is_int(raw):
            out.error(ln, where, f"a {dtype.name} value must be an integer, not {_describe(raw)}", "write value = 5 or value = 0x05 (no quotes).")
            return None, None, None
        if not dtype.minimum <= raw <= dtype.maximum:
            out.error(ln,
                      where,
                      f"value {raw} is out of range for {dtype.name} ({dtype.minimum}..{dtype.maximum})",
                      f"use a value from {dtype.minimum} to {dtype.maximum}, or a wider type.")
        return raw, None, None
    if kind in (Kind.BLOB, Kind.STRING, Kind.CUSTOM):
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            out.error(ln, where, f"a {dtype.name} value must be a string, not {_describe(raw)}", 'write value = "text\\n".')
            return None, None, None
        data = raw.encode()
        if kind is Kind.BLOB and len(data) > MAX_BLOB_BYTES:
            out.error(ln, where, f"blob value is {len(data)} bytes; at most {MAX_BLOB_BYTES}", "shorten it.")
        if kind is Kind.CUSTOM and len(data) > MAX_CUSTOM_VALUE:
            out.error(ln,
                      where,
                      f"a custom entry's starting value is {len(data)} bytes; at most {MAX_CUSTOM_VALUE}",
                      "shorten it; the starter code keeps it in a small buffer.")
        size = None
        if kind is Kind.STRING:
            size = _parse_size(item, data, where, line, out)
        return data, size, None
    if kind is Kind.U32_ARRAY:
        return _parse_array(item, dtype, where, line, out)
    return None, None, None


def _parse_size(item: dict, data: bytes, where: str, line, out: _Collector) -> int | None:
    raw = item.get("size")
    ln = line("size")
    if raw is None:
        if len(data) >= MAX_STRING_SIZE:
            out.error(line("value"), where, f"value is {len(data)} bytes; a string holds at most {MAX_STRING_SIZE - 1}", "shorten it.")
            return None
        return max(64, len(data) + 1)
    if not _is_int(raw):
        out.error(ln, where, f"size must be an integer, not {_describe(raw)}", "write size = 32 (bytes, NUL included).")
        return None
    if not 2 <= raw <= MAX_STRING_SIZE:
        out.error(ln, where, f"size {raw} is out of range (2..{MAX_STRING_SIZE} bytes, NUL included)", f"use a size from 2 to {MAX_STRING_SIZE}.")
        return None
    if len(data) > raw - 1:
        out.error(line("value"), where,
                  f"value is {len(data)} bytes but the buffer holds size - 1 = {raw - 1}", f"raise size to at least {len(data) + 1} or shorten the value.")
    return raw


def _parse_array(item: dict, dtype: DebugfsType, where: str, line, out: _Collector):
    raw = item.get("value", [])
    raw_len = item.get("length")
    values: list[int] = []
    if not isinstance(raw, list):
        out.error(line("value"), where, f"a u32_array value must be an array of integers, not {_describe(raw)}", "write value = [1, 2, 3].")
        raw = []
    for n, v in enumerate(raw):
        if not _is_int(v) or not 0 <= v <= dtype.maximum:
            out.error(line("value"), where, f"element {n} ({v!r}) is not a u32 (0..{dtype.maximum})", "use integers in that range.")
        else:
            values.append(v)
    length = raw_len
    if raw_len is None:
        length = len(raw)
    elif not _is_int(raw_len):
        out.error(line("length"), where, f"length must be an integer, not {_describe(raw_len)}", "write length = 4.")
        return None, None, None
    assert length is not None  # parsed above, or returned
    if not 1 <= length <= MAX_ARRAY_LENGTH:
        out.error(line("length") if raw_len is not None else line(), where,
                  f"array length {length} is out of range (1..{MAX_ARRAY_LENGTH})", "give length = N and up to N values.")
    elif len(raw) > length:
        out.error(line("value"), where, f"{len(raw)} values do not fit length {length}", f"raise length to {len(raw)} or drop values.")
    return tuple(values), None, length


def _check_tree(module: ModuleInfo | None, entries: list[Entry], out: _Collector) -> None:
    """Duplicate paths, file/directory clashes and C-name collisions."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        where = f"entry #{e.index} '{e.path}'"
        first = by_path.get(e.path)
        if first is not None:
            out.error(e.line, where,
                      f"duplicate path: entry #{first.index} (line {first.line}) already declares '{e.path}'", "remove one of them or rename it.")
            continue
        by_path[e.path] = e
    for e in entries:
        comps = e.components
        for i in range(1, len(comps)):
            parent = "/".join(comps[:i])
            holder = by_path.get(parent)
            if holder is not None and holder.type.kind is not Kind.DIR:
                out.error(
                    e.line,
                    f"entry #{e.index} '{e.path}'",
                    f"'{parent}' is used as a directory here but entry #{holder.index} (line {holder.line}) declares it a {holder.type.name} file",
                    "rename one of them.",
                )
    for e in entries if module is not None else ():
        ident = f"{module.name}_{e.cname}"  # type: ignore[union-attr]  # module is not None here
        if len(ident) > C_NAME_MAX:
            out.error(
                e.line,
                f"entry #{e.index} '{e.path}'",
                f"the C name '{ident}' is {len(ident)} characters long; at most {C_NAME_MAX} keep the generated code within 100 columns",
                "shorten the path or the module name.",
            )
    # Every path, declared or implied, with the first entry that names it.
    introduced: dict[str, Entry] = {}
    for e in entries:
        for i in range(1, len(e.components) + 1):
            introduced.setdefault("/".join(e.components[:i]), e)
    by_cname: dict[str, str] = {}
    for path, e in introduced.items():
        c = cname_of(path)
        other = by_cname.setdefault(c, path)
        if other != path:
            out.error(e.line, f"entry #{e.index} '{e.path}'",
                      f"'{path}' and '{other}' both become the C name '{c}'", "rename one so they differ in more than '.', '-' and '_'.")
    if module is not None:
        _check_generated_names(module.name, introduced, by_path, out)


def _check_generated_names(name: str, introduced: dict[str, Entry], by_path: dict[str, Entry], out: _Collector) -> None:
    """The C identifiers the templates derive from entries must not clash
    with each other or with the module's own (e.g. entry 'root' and the root
    dentry <name>_root, or blob 'x' with its x_data and a u8 'x_data')."""
    owners: dict[str, tuple[str, str]] = {
        f"{name}_{s}": ("", f"the module's {what}")
        for s, what in (("root", "root directory"), ("init", "init function"), ("exit", "exit function"), ("create_u32_array", "u32_array helper"))
    }
    owners.update({f"textbuf_{s}": ("", "the shared text-buffer code") for s in ("read", "write", "fops", "ro_fops", "wo_fops")})
    parents = {p.rsplit("/", 1)[0] for p in introduced if "/" in p}
    suffixes = {
        Kind.INTEGER: ("",),
        Kind.BOOL: ("",),
        Kind.BLOB: ("", "_data"),
        Kind.STRING: ("", "_data"),
        Kind.U32_ARRAY: ("", "_data"),
        Kind.SEQ: ("", "_show", "_open", "_fops"),
        Kind.CUSTOM: ("", "_fops", "_read", "_write"),
    }
    for path, e in introduced.items():
        declared = by_path.get(path)
        if declared is not None and declared.type.kind is not Kind.DIR:
            idents = [f"{name}_{declared.cname}{s}" for s in suffixes[declared.type.kind]]
            what = f"entry #{declared.index} '{path}'"
            e = declared
        elif path in parents:
            idents = [f"dir_{cname_of(path)}"]  # a local in <name>_init()
            what = f"directory '{path}'"
        else:
            continue
        for ident in idents:
            owner, owner_what = owners.setdefault(ident, (path, what))
            if owner == path or (owner and cname_of(owner) == cname_of(path)):
                continue  # the same thing, or a C-name clash reported above
            out.error(e.line, f"entry #{e.index} '{e.path}'",
                      f"'{path}' needs the C name '{ident}', which is also used by {owner_what}", "rename the entry so that the names differ.")


def _rewrite_module_name(text: str, loc: _Locator, name: str, data: dict, source_name: str) -> str:
    """Put a command-line name into the spec text, keeping everything else."""
    lines = text.splitlines(keepends=True)
    new_line = f'name = "{name}"\n'
    if loc.module is None:
        # At the top unless top-level keys (entry = [...]) would fall into it.
        candidates = [f"[module]\n{new_line}\n" + text, text + ("\n" if text and not text.endswith("\n") else "") + f"\n[module]\n{new_line}"]
    elif "name" in loc.module.keys:
        n = loc.module.keys["name"] - 1
        comment = re.search(r"\s+#.*$", lines[n].rstrip("\r\n"))
        lines[n] = new_line.rstrip("\n") + (comment.group(0) if comment else "") + "\n"
        candidates = ["".join(lines)]
    else:
        n = loc.module.header_line
        if not lines[n - 1].endswith("\n"):
            lines[n - 1] += "\n"
        lines.insert(n, new_line)
        candidates = ["".join(lines)]
    expected = {**data, "module": {**data.get("module", {}), "name": name}}
    for candidate in candidates:
        try:
            if tomllib.loads(candidate) == expected:
                return candidate
        except tomllib.TOMLDecodeError:
            pass
    raise SpecError([Problem(
        source_name,
        loc.module_line("name"),
        "[module]",
        "cannot write the module name from the command line into this spec",
        'write [module] as a table with name = "..." on a line of its own, or leave out NAME.',
    )])


def read_spec_text(path: Path) -> str:
    """Read a spec file, turning every I/O problem into a UserError."""
    raw = read_input(
        path,
        missing_fix=f"check the path, or run 'dbgscaffold spec example > {path.name}'.",
        directory_fix="pass the .toml spec file itself.",
    )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: error: not UTF-8 text (bad byte at offset {exc.start}). Fix: save the spec as UTF-8.") from None


def load_spec(path: Path, name_override: str | None = None) -> Spec:
    return parse_spec(read_spec_text(path), str(path), name_override)
