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
from .errors import UserError
from .inputs import read_input
from .kinds import ALL_KEYS as KIND_KEYS
from .kinds import COMMON_KEYS, TYPES
from .problems import Problem, SpecError, syntax_problem
from .spec_model import DEFAULT_DIR_FIELD, Collector, DebugfsType, Entry, Instance, ModuleInfo, Parsing, Spec, Writes, cname_of, describe, is_int
from .test_table import parse_test_table

ALL_KEYS = tuple(sorted({*KIND_KEYS, "field"}))  # field: instance entries only

__all__ = ["SPEC_FILE", "Entry", "Spec", "SpecError", "cname_of", "load_spec", "parse_spec", "read_spec_text"]

MODULE_KEYS = ("name", "description", "author", "license", "version", "root")
SPEC_FILE = "dbgscaffold.toml"  # a project's spec, beside its sources
TOP_KEYS = ("module", "entry", "instance", "test")
INSTANCE_KEYS = ("struct", "header", "dir_field", "demo", "entry")
# Structs the generated header's includes define: a device struct may not take their names.
KERNEL_STRUCTS = frozenset("""file inode dentry seq_file mutex device module kobject list_head spinlock work_struct
    timer_list page kref rcu_head debugfs_blob_wrapper debugfs_regset32 debugfs_reg32 debugfs_u32_array file_operations""".split())
C_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,23}\Z")  # struct and member names; 24 keep lines short

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
# The kernel allows 255-byte names; 60 keeps every generated create call within
# checkpatch's 100 columns.
NAME_MAX = 60
MAX_DIRECTORIES = 64  # d[] in <name>_init() and <name>_debugfs_add(): 512 bytes of stack
C_NAME_MAX = 55  # <module>_<entry> identifiers, for the same reason
# Names that would clash with C keywords, the kernel's own objects or the
# files we generate next to the module.
RESERVED_NAMES = frozenset(keyword.kwlist) | frozenset(
    """auto break case char const continue default do double else enum extern float
    for goto if inline int long register restrict return short signed sizeof static
    struct switch typedef union unsigned void volatile while bool true false
    kernel module vmlinux linux debugfs tracefs sysfs procfs built_in modules modpost""".split()
)


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
    instance: _Table | None = None
    instance_entries: list[_Table] = field(default_factory=list)

    @classmethod
    def scan(cls, text: str) -> _Locator:
        top = _Table(0)
        module: _Table | None = None
        instance: _Table | None = None
        entries: list[_Table] = []
        instance_entries: list[_Table] = []
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
                elif header.group(1) == "[[" and re.sub(r"\s", "", header.group(2)) == "instance.entry":
                    instance_entries.append(current)
                elif header.group(1) == "[" and header.group(2) == "instance":
                    instance = current
                continue
            key = _KEY_RE.match(line)
            if key:
                name = next(g for g in key.groups() if g is not None)
                current.keys.setdefault(name, number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote
                    break
        return cls(top, module, entries, instance, instance_entries)

    def module_line(self, key: str | None = None) -> int:
        if self.module is None:
            return self.top.keys.get("module", 1)
        if key is not None and key in self.module.keys:
            return self.module.keys[key]
        return self.module.header_line

    def entry_line(self, index: int, key: str | None = None, in_instance: bool = False) -> int:
        tables = self.instance_entries if in_instance else self.entries
        if 0 <= index < len(tables):
            table = tables[index]
            if key is not None and key in table.keys:
                return table.keys[key]
            return table.header_line
        if in_instance:
            return self.instance_line()
        return self.top.keys.get("entry", 0)

    def instance_line(self, key: str | None = None) -> int:
        if self.instance is None:
            return self.top.keys.get("instance", 0)
        return self.instance.keys.get(key, self.instance.header_line) if key else self.instance.header_line


# ---------------------------------------------------------------------------


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


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
    out = Collector(source_name)
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
                "the spec has a [module] table, [[entry]] tables, an [instance] table and a [test] table only.",
            )

    module = _parse_module(data.get("module"), loc, out, name_override)
    entries = _parse_entries(data.get("entry", []), loc, out)
    owners = _reserved_names(module.name) if module is not None else {}
    _check_tree(module.name if module is not None else None, entries, out, owners)
    instance = _parse_instance(data.get("instance"), loc, out, module, entries, owners)
    test, problems = parse_test_table(data.get("test"), text, source_name)
    out.problems += problems
    if out.has_errors or module is None:
        raise SpecError(out.problems)
    if name_override is not None:
        text = _rewrite_module_name(text, loc, name_override, data, source_name)
    warnings = tuple(p for p in out.problems if p.warning)
    return Spec(module, tuple(entries), source_name, text, warnings, test, instance)


def _string_key(table: dict, key: str, where: str, line: int, out: Collector) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        out.error(line, where, f"'{key}' must be a string, not {describe(value)}", f'write {key} = "..."')
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        out.error(line, where, f"'{key}' contains control characters", "keep it to one printable line.")
        return None
    return value


def _parse_module(raw: object, loc: _Locator, out: Collector, name_override: str | None) -> ModuleInfo | None:
    where = "[module]"
    if raw is None:
        raw = {}
        if name_override is None:
            out.error(0, "", "the spec has no [module] table", 'add [module] with at least name = "mymod".')
            return None
    if not isinstance(raw, dict):
        out.error(loc.module_line(), where, f"'module' must be a table, not {describe(raw)}", "write a [module] table.")
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
        spdx=GPL_LICENSES[license_],
    )


def _parse_entries(raw: object, loc: _Locator, out: Collector, in_instance: bool = False) -> list[Entry]:
    table = "instance.entry" if in_instance else "entry"
    where_line = loc.instance_line("entry") if in_instance else loc.top.keys.get("entry", 1)
    if isinstance(raw, dict):
        out.error(where_line, "", f"'{table}' must be an array of tables", f"write each entry as [[{table}]], with two brackets.")
        return []
    if not isinstance(raw, list):
        out.error(where_line, "", f"'{table}' must be an array of tables", f"write each entry as [[{table}]].")
        return []
    entries = []
    for i, item in enumerate(raw):
        entry = _parse_entry(i, item, loc, out, in_instance)
        if entry is not None:
            entries.append(entry)
    return entries


def _parse_entry(i: int, item: object, loc: _Locator, out: Collector, in_instance: bool = False) -> Entry | None:
    header = loc.entry_line(i, in_instance=in_instance)
    label = "instance entry" if in_instance else "entry"
    if not isinstance(item, dict):
        out.error(header, f"{label} #{i + 1}", f"an entry must be a table, not {describe(item)}", f"write it as [[{'instance.' if in_instance else ''}entry]].")
        return None
    raw_path = item.get("path")
    where = f"{label} #{i + 1}" + (f" '{raw_path}'" if isinstance(raw_path, str) else "")

    def line(key: str | None = None) -> int:
        return loc.entry_line(i, key, in_instance)

    for key in item:
        if key not in ALL_KEYS:
            hint = _did_you_mean(key, ALL_KEYS)
            out.error(line(key), where, f"unknown key '{key}'" + (f"; {hint}" if hint else ""), "valid keys: " + ", ".join(ALL_KEYS) + ".")

    # path
    path = None
    if raw_path is None:
        out.error(header, where, "missing required key 'path'", 'add path = "name" (relative to the module\'s root directory).')
    elif not isinstance(raw_path, str):
        out.error(line("path"), where, f"'path' must be a string, not {describe(raw_path)}", 'write path = "dir/name".')
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
    kind = dtype.kind
    allowed = (COMMON_KEYS if kind.takes_mode else COMMON_KEYS - {"mode"}) | kind.keys | {"field"}  # field: _parse_field
    for key in item:
        if key in ALL_KEYS and key not in allowed:
            users = sorted(t.name for t in TYPES.values() if key in t.keys)
            if key == "mode":
                out.error(line(key), where, kind.no_mode_because, "remove the mode line.")
            else:
                out.error(line(key), where, f"key '{key}' does not apply to type '{dtype.name}'", f"remove it ('{key}' applies to: {', '.join(users)}).")

    mode = _parse_mode(item, dtype, where, line, out)
    value, params = kind.parse(Parsing(item, dtype, where, line, out))
    member = _parse_field(item, dtype, mode, where, line, out, in_instance)
    if member:
        params["field"] = member
    if path is None:
        return None
    # An entry with a bad mode or value still takes part in the tree checks
    # (duplicates, file/directory clashes) so that every problem is reported.
    return Entry(index=i + 1, line=header, path=path, type=dtype, mode=mode, value=value, params=tuple(params.items()), instance=in_instance)


def _parse_field(item: dict, dtype: DebugfsType, mode: int | None, where: str, line, out: Collector, in_instance: bool) -> str:
    """The struct member an instance entry is bound to ('' for none), and whether its kind may be per instance."""
    kind, raw = dtype.kind, item.get("field")
    if not in_instance:
        if raw is not None:
            out.error(line("field"), where, "'field' applies only to the entries of [instance]: it names a member of your struct",
                      "move the entry to [[instance.entry]], or remove the field line.")
        return ""
    if not kind.per_instance:
        allowed = ", ".join(sorted(t.name for t in TYPES.values() if t.kind.per_instance))
        out.error(line("type"), where, f"a {dtype.name} entry is module-wide only; it cannot be created per instance",
                  f"move it to [[entry]], or use one of: {allowed}.")
        return ""
    if kind.instance_read_only and mode is not None and mode & 0o222:
        out.error(line("mode"), where, f"per instance a {dtype.name} is read-only (the demo instances share its bytes)", 'use mode = "0444".')
    if raw is None:
        if kind.needs_field:
            out.error(line(), where, f"a {dtype.name} entry of an instance needs 'field', the member of your struct it shows",
                      f'add field = "{cname_of(str(item.get("path", "value")).rsplit("/", 1)[-1])}".')
        return ""
    if not kind.needs_field and not kind.takes_field:
        out.error(line("field"), where, f"a {dtype.name} entry takes no field: its code gets the instance itself", "remove the field line.")
        return ""
    if not isinstance(raw, str) or not C_IDENTIFIER_RE.match(raw):
        out.error(line("field"), where, f"field {raw!r} is not a C identifier of at most 24 characters", 'write field = "count".')
        return ""
    return raw


def _suggest_mode(mode: int, dtype: DebugfsType) -> str:
    """A mode close to `mode` that passes every rule: no execute bits, only the
    owner may write, and nobody may write a read-only type."""
    keep = 0o644 if dtype.writes is not Writes.NO else 0o444
    return f"{mode & keep or 0o400:04o}"


def _parse_mode(item: dict, dtype: DebugfsType, where: str, line, out: Collector) -> int | None:
    if not dtype.kind.takes_mode:
        return None
    raw = item.get("mode", dtype.default_mode)
    if is_int(raw):
        out.error(line("mode"), where, f"mode must be a quoted 4-digit octal string, not the integer {raw}", f'write mode = "{dtype.default_mode}".')
        return None
    if not isinstance(raw, str) or not MODE_RE.match(raw):
        shown = raw if isinstance(raw, str) else describe(raw)
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


def _check_tree(prefix: str | None, entries: list[Entry], out: Collector, owners: dict[str, tuple[str, str]]) -> None:
    """Duplicate paths, file/directory clashes and C-name collisions among `entries`
    (the module's, or an instance's), whose C names start with `prefix`_."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        first = by_path.get(e.path)
        if first is not None:
            out.error(e.line, e.where,
                      f"duplicate path: {first.where.rsplit(' ', 1)[0]} (line {first.line}) already declares '{e.path}'",
                      "remove one of them or rename it.")
            continue
        by_path[e.path] = e
    for e in entries:
        comps = e.components
        for i in range(1, len(comps)):
            parent = "/".join(comps[:i])
            holder = by_path.get(parent)
            if holder is not None and not holder.kind.directory:
                out.error(e.line, e.where,
                          f"'{parent}' is used as a directory here but entry #{holder.index} (line {holder.line}) declares it a {holder.type.name} file",
                          "rename one of them.")
    for e in entries if prefix is not None else ():
        ident = f"{prefix}_{e.cname}"
        if len(ident) > C_NAME_MAX:
            out.error(e.line, e.where,
                      f"the C name '{ident}' is {len(ident)} characters long; at most {C_NAME_MAX} keep the generated code within 100 columns",
                      "shorten the path or the module name" + (" or the struct's name." if e.instance else "."))
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
            out.error(e.line, e.where, f"'{path}' and '{other}' both become the C name '{c}'", "rename one so they differ in more than '.', '-' and '_'.")
    if prefix is not None:
        _check_generated_names(prefix, by_path, out, owners)
    directories = frozenset(p for p in introduced if p not in by_path or by_path[p].kind.directory)
    if len(directories) > MAX_DIRECTORIES:
        e = introduced[sorted(directories, key=list(introduced).index)[MAX_DIRECTORIES]]
        out.error(e.line, e.where,
                  f"the tree has {len(directories)} directories; at most {MAX_DIRECTORIES} (their dentries live on the stack of the function making them)",
                  "flatten the tree, or create the rest at run time.")
    for e in by_path.values():
        e.kind.check_tree(e, by_path, directories, out)


def _reserved_names(name: str) -> dict[str, tuple[str, str]]:
    """The module's own C names, which no entry's may take: name -> ('', what)."""
    owners: dict[str, tuple[str, str]] = {
        f"{name}_{s}": ("", f"the module's {what}")
        for s, what in (("root", "root directory"), ("init", "init function"), ("exit", "exit function"), ("debugfs_add", "instance function"),
                        ("debugfs_remove", "instance function"), ("debugfs_init", "init function"), ("debugfs_exit", "exit function"))
    }
    owners.update({f"textbuf_{s}": ("", "the shared text-buffer code") for s in ("read", "write", "fops", "ro_fops", "wo_fops")})
    return owners


def _check_generated_names(prefix: str, by_path: dict[str, Entry], out: Collector, owners: dict[str, tuple[str, str]]) -> None:
    """The C identifiers the templates derive from entries must not clash
    with each other or with the module's own (e.g. entry 'root' and the root
    dentry <name>_root, or blob 'x' with its x_data and a u8 'x_data')."""
    for path, e in by_path.items():
        if e.kind.directory:
            continue
        key = ("instance:" if e.instance else "") + path
        for ident in (f"{prefix}_{e.cname}{s}" for s in e.kind.suffixes):
            owner, owner_what = owners.setdefault(ident, (key, e.where))
            if owner == key or (owner and owner.startswith("instance:") == e.instance and cname_of(owner.removeprefix("instance:")) == cname_of(path)):
                continue  # the same thing, or a C-name clash reported above
            out.error(e.line, e.where, f"'{path}' needs the C name '{ident}', which is also used by {owner_what}", "rename the entry so that the names differ.")


def _parse_instance(raw: object, loc: _Locator, out: Collector, module: ModuleInfo | None, module_entries: list[Entry],
                    owners: dict[str, tuple[str, str]]) -> Instance | None:
    """[instance]: the struct each device has, its demo instances, and [[instance.entry]]."""
    if raw is None:
        return None
    where = "[instance]"
    if not isinstance(raw, dict):
        out.error(loc.instance_line(), where, f"'instance' must be a table, not {describe(raw)}", 'write [instance] with struct = "mydev".')
        return None
    for key in raw:
        if key not in INSTANCE_KEYS:
            hint = _did_you_mean(key, INSTANCE_KEYS)
            out.error(loc.instance_line(key), where, f"unknown key '{key}'" + (f"; {hint}" if hint else ""), "valid keys: " + ", ".join(INSTANCE_KEYS) + ".")
    ok = True
    struct = raw.get("struct")
    if struct is None:
        out.error(loc.instance_line(), where, "missing required key 'struct'", 'add struct = "mydev" (your per-device struct).')
        ok = False
    elif not isinstance(struct, str) or not C_IDENTIFIER_RE.match(struct) or struct in RESERVED_NAMES:
        out.error(loc.instance_line("struct"), where, f"struct {struct!r} is not a C identifier of at most 24 characters", 'write struct = "mydev".')
        ok = False
    header = raw.get("header", "")
    if not isinstance(header, str) or (header and (not header.endswith(".h") or any(c in ("", ".", "..") for c in header.split("/"))
                                                   or not all(COMPONENT_RE.match(c) for c in header.split("/")))):
        out.error(loc.instance_line("header"), where, f"header {header!r} is not a relative path to a .h file of your project",
                  'write header = "mydrv.h" (the header that declares your struct), or leave it out to have it declared for you.')
        ok = False
        header = ""
    dir_field = raw.get("dir_field", DEFAULT_DIR_FIELD)
    if not isinstance(dir_field, str) or not C_IDENTIFIER_RE.match(dir_field) or dir_field in RESERVED_NAMES:
        out.error(loc.instance_line("dir_field"), where, f"dir_field {dir_field!r} is not a C identifier", f'write dir_field = "{DEFAULT_DIR_FIELD}".')
        ok = False
    demo = raw.get("demo", [])
    names: list[str] = []
    top_level = {e.components[0] for e in module_entries}
    if not isinstance(demo, list):
        out.error(loc.instance_line("demo"), where, f"'demo' must be an array of names, not {describe(demo)}", 'write demo = ["dev0", "dev1"].')
        ok = False
        demo = []
    for n, name in enumerate(demo):
        why = check_component(name) if isinstance(name, str) else f"is {describe(name)}, not a name"
        if why:
            out.error(loc.instance_line("demo"), where, f"demo instance {n} {why}", 'use names such as "dev0".')
            ok = False
        elif name in names:
            out.error(loc.instance_line("demo"), where, f"demo instance '{name}' is named twice", "give each demo instance its own name.")
            ok = False
        elif name in top_level:
            out.error(loc.instance_line("demo"), where, f"demo instance '{name}' has the name of a module-wide entry (its directory would clash)",
                      "rename the demo instance or the entry.")
            ok = False
        else:
            names.append(name)
    if demo and header:
        out.error(loc.instance_line("demo"), where, "demo instances need the struct declared by the generated header, not your header",
                  "remove demo (your driver adds its devices), or remove header.")
        ok = False
    entries = _parse_entries(raw.get("entry", []), loc, out, in_instance=True)
    if not entries and "entry" not in raw:
        out.error(loc.instance_line(), where, "the instance has no [[instance.entry]]", "add entries, or remove [instance].")
        ok = False
    if isinstance(struct, str) and not header and struct in KERNEL_STRUCTS:
        out.error(loc.instance_line("struct"), where, f"struct '{struct}' is the kernel's own; the generated header would declare it again",
                  f'name your device\'s struct, e.g. struct = "my{struct}".')
        ok = False
    members: dict[str, Entry | None] = {str(dir_field): None}
    for e in entries:
        member = e.field
        if member in RESERVED_NAMES:
            out.error(e.line, e.where, f"field '{member}' is a C keyword or a name the kernel build uses", "name the member something else.")
            continue
        for name in _member_names(e):
            other = members.setdefault(name, e)
            if other is e:
                continue
            if other is None:
                out.error(e.line, e.where, f"field '{member}' needs the member '{name}', the instance's directory (dir_field)", "use another member.")
            elif not header:
                out.error(e.line, e.where,
                          f"field '{member}' needs the member '{name}', which {other.where} has; the generated struct has one member of each name",
                          "give each entry its own field.")
    if module is not None and isinstance(struct, str):
        _check_tree(f"{module.name}_{struct}", entries, out, owners)
    if not ok or module is None or not isinstance(struct, str):
        return None
    return Instance(struct=struct, header=header, dir_field=dir_field, demo=tuple(names), entries=tuple(entries))


def _member_names(e: Entry) -> list[str]:
    """The struct members an instance entry needs (a regset32 also its stand-in memory)."""
    return [re.split(r"[\[;]", decl)[0].split()[-1].lstrip("*") for decl in e.kind.members(e)] if e.field else []


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
