"""The shared model of a spec: its entries, and the contract each kind of entry keeps.

`spec` reads TOML into these frozen dataclasses, `render` turns them into C and
`runner.checks` into guest checks; none of the three knows one kind from
another: each asks the entry's kind (a `Kind`, implemented once per kind in
generator/kinds/<name>.py with its template snippet in
module_templates/module/templates/kinds/<name>.j2).
"""

from __future__ import annotations

import enum
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from .problems import Problem
from .test_table import TestTable


class Writes(enum.Enum):
    """Whether the kernel lets a file of a type be written."""

    YES = "yes"
    NO = "no"
    SINCE_6_8 = "since 6.8"  # debugfs_create_blob masked the mode read-only before 6.8


@dataclass(frozen=True)
class DebugfsType:
    """One `type = "..."` of a spec: a kind, and what differs between the types of one kind."""

    name: str
    kind: Kind
    c_type: str | None = None  # type of the backing variable, if there is one
    helper: str = ""  # the kernel function that creates the file
    minimum: int | None = None
    maximum: int | None = None
    writes: Writes = Writes.YES
    read_format: str | None = None  # str.format() of what read(2) returns, for checks
    default_mode: str = "0644"
    note: str = ""  # one line for `spec types` and the generated README

    @property
    def keys(self) -> frozenset[str]:
        return self.kind.keys


@dataclass(frozen=True)
class Check:
    """One top-level KTAP result: its description and the shell body that decides it
    (exit 0 pass, 4 skip, anything else fail; diagnostics through `diag`)."""

    name: str
    body: str
    user_script: str = ""  # guest path of a user's tests/*.sh (body unused then)


_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:/=+-")


def printf_format(data: bytes) -> str:
    """A single-quoted printf FORMAT producing exactly `data` (octal escapes for
    everything outside a small safe set: quotes, %, backslash, controls, non-ASCII)."""
    return "'" + "".join(chr(b) if b in _SAFE else f"\\{b:03o}" for b in data) + "'"


def cname_of(path: str) -> str:
    """C identifier fragment of a path: 'subdir/c' -> 'subdir_c'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", path)


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    description: str
    author: str
    license: str
    version: str
    root: str
    spdx: str


@dataclass(frozen=True)
class Entry:
    index: int  # 1-based position in the spec, for messages
    line: int
    path: str  # normalised, relative to the module's root directory
    type: DebugfsType
    mode: int | None  # None where the kind takes no mode (directories, symlinks)
    value: object = None  # as the kind parsed it: int, bool, bytes, tuple[int, ...]
    params: tuple[tuple[str, object], ...] = ()  # the kind's other keys, parsed (size, length, ...), and field
    instance: bool = False  # an [[instance.entry]]: one file per device, under its directory

    @property
    def where(self) -> str:
        """How messages name it: "entry #3 'subdir/c'"."""
        return f"{'instance entry' if self.instance else 'entry'} #{self.index} '{self.path}'"

    @property
    def field(self) -> str:
        """The member of the instance's struct it shows ('' for none)."""
        return str(self.param("field", ""))

    @property
    def kind(self) -> Kind:
        return self.type.kind

    def param(self, key: str, default: object = None) -> object:
        return dict(self.params).get(key, default)

    def int_param(self, key: str) -> int:
        value = self.param(key)
        return value if isinstance(value, int) else 0

    @property
    def data(self) -> bytes:
        """The value of a kind that holds bytes (b"" for none)."""
        return self.value if isinstance(self.value, bytes) else b""

    @property
    def number(self) -> int:
        """The value of a kind that holds a number (0 for none)."""
        return int(self.value) if isinstance(self.value, int) else 0

    @property
    def numbers(self) -> tuple[int, ...]:
        """The value of a kind that holds an array."""
        return self.value if isinstance(self.value, tuple) else ()

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

    @property
    def readable(self) -> bool:
        return bool(self.mode and self.mode & 0o444)

    @property
    def writable_mode(self) -> bool:
        return bool(self.mode and self.mode & 0o222)


DEFAULT_DIR_FIELD = "debugfs_dir"


@dataclass(frozen=True)
class Instance:
    """[instance]: the files each device gets under <root>/<device name>/."""

    struct: str  # the C struct of a device
    header: str  # the user's header that declares it; "" when the generated header does
    dir_field: str  # the struct's member that holds the device's directory
    demo: tuple[str, ...]  # devices the generated module creates itself
    entries: tuple[Entry, ...]

    @property
    def files(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if not e.kind.directory)

    @property
    def directories(self) -> tuple[str, ...]:
        """Every directory below a device's, explicit or implied, parents first."""
        return directories_of(self.entries)


def directories_of(entries: tuple[Entry, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for entry in entries:
        comps = entry.components
        upto = len(comps) if entry.kind.directory else len(comps) - 1
        for i in range(1, upto + 1):
            seen.setdefault("/".join(comps[:i]), None)
    return tuple(seen)


@dataclass(frozen=True)
class Spec:
    module: ModuleInfo
    entries: tuple[Entry, ...]
    source_name: str
    text: str  # the spec as written (after any name override), copied into the project
    warnings: tuple[Problem, ...] = field(default=())
    test: TestTable = field(default=TestTable())  # how `dbgscaffold test` loads it
    instance: Instance | None = None

    @property
    def directories(self) -> tuple[str, ...]:
        """Every directory below the root, explicit or implied, parents first."""
        return directories_of(self.entries)

    @property
    def files(self) -> tuple[Entry, ...]:
        """Every entry that is not a directory (files and links)."""
        return tuple(e for e in self.entries if not e.kind.directory)

    def c_names(self) -> tuple[tuple[str, str], ...]:
        """(C name, path) of each file entry: the generated module's variable for it and
        the prefix of its handlers (<module>_<entry>_read, ..._show)."""
        inst = self.instance
        per_device = tuple((f"{self.module.name}_{inst.struct}_{e.cname}", f"<device>/{e.path}") for e in inst.files) if inst else ()
        return tuple((f"{self.module.name}_{e.cname}", e.path) for e in self.files) + per_device


class Collector:
    """Problems of one spec, errors and warnings, in the order found."""

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


# Where a key of the entry being parsed is: Where(key) -> its line (the header for None).
Where = Callable[[str | None], int]


@dataclass(frozen=True)
class Parsing:
    """What a kind's parse() gets: the entry's table, its type, where it is, where problems go."""

    item: Mapping[str, object]
    type: DebugfsType
    where: str  # "entry #3 'subdir/c'"
    line: Where
    out: Collector

    def error(self, key: str | None, message: str, fix: str) -> None:
        self.out.error(self.line(key), self.where, message, fix)

    def warn(self, key: str | None, message: str, fix: str) -> None:
        self.out.warn(self.line(key), self.where, message, fix)


def describe(value: object) -> str:
    """'an integer', 'a string', ...: what a TOML value is, for messages."""
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


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def quoted(path: str) -> str:
    return shlex.quote(path)


def data_of(e: Entry, var: str, obj: str) -> str:
    """The pointer a create call passes: the module's variable, or the device's member."""
    return f"&{obj}->{e.field}" if obj else f"&{var}"


class Kind:
    """The contract of one kind of debugfs entry.

    A kind serves one or more spec types (u8 ... x64 are one kind), validates
    their keys, tells the renderer what C names it defines and how its file
    is created (its declarations are the snippet kinds/<name>.j2), and tells
    the VM checks what a read returns, what the kernel makes of a write and
    what to throw at it under --stress.  The defaults describe a plain file.
    """

    name: ClassVar[str]
    order: ClassVar[int]  # where its declarations come in the generated C, and in lists
    keys: ClassVar[frozenset[str]] = frozenset()  # spec keys beyond path, type and mode
    directory: ClassVar[bool] = False
    takes_mode: ClassVar[bool] = True
    no_mode_because: ClassVar[str] = ""  # the message for a mode given where none is taken
    suffixes: ClassVar[tuple[str, ...]] = ("",)  # C names it defines: <module>_<entry><suffix>
    includes: ClassVar[frozenset[str]] = frozenset()  # <linux/*.h> the generated C needs
    user_role: ClassVar[str] = ""  # what user/<entry>.c holds for the user; "" when there is none
    per_instance: ClassVar[bool] = False  # may be an [[instance.entry]]
    needs_field: ClassVar[bool] = False  # ... bound to a member of the struct (field = "...")
    takes_field: ClassVar[bool] = False  # ... optionally so
    instance_read_only: ClassVar[bool] = False  # ... and then without write bits

    def types(self) -> tuple[DebugfsType, ...]:
        raise NotImplementedError

    # --- the spec -------------------------------------------------------------

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        """Validate the kind's keys: (value, other params), problems reported to p."""
        return None, {}

    def check_tree(self, e: Entry, by_path: Mapping[str, Entry], directories: frozenset[str], out: Collector) -> None:
        """Problems between this entry and the others (a link's target)."""

    # --- the C ---------------------------------------------------------------

    def create_call(self, e: Entry, var: str, parent: str, obj: str = "") -> tuple[str, tuple[str, ...]]:
        """The kernel call that makes the file: in <module>_init(), or for an instance
        entry in <module>_debugfs_add() where `obj` is the device (`dev`)."""
        return e.type.helper, (f'"{e.basename}"', e.mode_octal, parent, data_of(e, var, obj))

    def members(self, e: Entry) -> list[str]:
        """An instance entry's members of the struct the generated header declares
        (declarations "type name;" or "type name[n]; /* why */")."""
        return []

    def add_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        """(left, right) assignments in <module>_debugfs_add() before the file is made."""
        return []

    def demo_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        """(left, right) assignments that give a demo instance the spec's starting value
        (left empty: `right` is a statement of its own)."""
        return []

    def includes_for(self, e: Entry) -> frozenset[str]:
        """The <linux/*.h> headers the entry's C needs."""
        return self.includes

    def template_fields(self, e: Entry, var: str) -> dict[str, object]:
        """Values the kind's snippet reads beside the entry's own."""
        return {}

    def user_state_size(self, e: Entry) -> int:
        return 0

    def shown_value(self, e: Entry) -> str:
        """How the initial value reads back, for the README table."""
        return ""

    def sample_write(self, e: Entry) -> str | None:
        """A value to show `echo VALUE > file` with in the README, None if not writable."""
        return "7" if self.writable(e, (99,)) else None

    # --- the checks -----------------------------------------------------------

    def writable(self, e: Entry, version: tuple[int, ...]) -> bool:
        """Does the kernel let a write through (for root) on this kernel version?"""
        if not e.writable_mode or e.type.writes is Writes.NO:
            return False
        if e.type.writes is Writes.SINCE_6_8:
            return bool(version) and version >= (6, 8)
        return True

    def shown_mode(self, e: Entry, version: tuple[int, ...]) -> str:
        """`stat -c %a` of the file."""
        return f"{(e.mode or 0) & 0o7777:o}"

    def reads(self, e: Entry, version: tuple[int, ...]) -> bytes | None:
        """What read(2) returns right after load, or None when we can't know."""
        return None

    def checks(self, e: Entry, path: str, version: tuple[int, ...]) -> list[Check]:
        """The checks of the file at guest path `path`: exists, mode, initial read, then the kind's own."""
        p = quoted(path)
        out = [
            Check(f"{e.path}: exists", f"[ -f {p} ] || {{ diag 'no file {path}'; exit 1; }}"),
            Check(f"{e.path}: mode {self.shown_mode(e, version)}", f"mode_is {p} {self.shown_mode(e, version)}"),
        ]
        initial = self.reads(e, version)
        if initial is not None and e.readable:
            out.append(Check(f"{e.path}: reads its initial value", f"same {p} {printf_format(initial)}"))
        return out + self.behaviour_checks(e, p, version)

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        """The kind's own checks after the common ones (p: the quoted guest path)."""
        return []

    def rejects_writes_check(self, e: Entry, p: str, version: tuple[int, ...], why: str = "read-only") -> Check:
        initial = self.reads(e, version)
        back = f" && same {p} {printf_format(initial)}" if initial is not None and e.readable else ""
        return Check(f"{e.path}: a write is rejected even for root ({why})", f"put_fails {p} '1\\n'{back}")

    def changing_write(self, e: Entry) -> tuple[bytes, bytes] | None:
        """A write that changes what the file reads, and the write that puts the
        starting value back (to show two devices do not share it); None: none known."""
        return None

    def stress_values(self, e: Entry) -> tuple[list[bytes], bool]:
        """What a concurrent writer writes, and whether each write must succeed."""
        return [], False

    def nominal_size(self, e: Entry) -> int | None:
        """The length the entry holds, for writes just below, at and above it; None: nothing a write reaches."""
        return None
