"""The debugfs entry types a spec may use, as data.

One row per type: what C storage backs it, which kernel helper creates it, the
range of values it holds, which mode bits make sense, and how the kernel prints
it when the file is read.  Adding a type means adding a row here and a snippet
in the module template; the spec validator and the renderer read only this table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    """How an entry is backed; the template switches on this, not on type names."""

    DIR = "dir"
    INTEGER = "integer"  # debugfs_create_<type>(name, mode, parent, &var)
    BOOL = "bool"
    BLOB = "blob"  # struct debugfs_blob_wrapper over a char array
    STRING = "string"  # char buffer, our own file_operations and mutex
    U32_ARRAY = "u32_array"  # struct debugfs_u32_array
    SEQ = "seq"  # DEFINE_SHOW_ATTRIBUTE, show() body owned by the user
    CUSTOM = "custom"  # read/write bodies owned by the user


class Writes(enum.Enum):
    """Whether the kernel lets a file of this type be written."""

    YES = "yes"
    NO = "no"
    SINCE_6_8 = "since 6.8"  # debugfs_create_blob masked the mode read-only before 6.8


@dataclass(frozen=True)
class DebugfsType:
    name: str
    kind: Kind
    c_type: str | None  # type of the backing variable, if there is one
    helper: str  # the kernel function that creates the file
    minimum: int | None = None
    maximum: int | None = None
    writes: Writes = Writes.YES
    read_format: str | None = None  # str.format() of what read(2) returns, for checks
    keys: frozenset[str] = frozenset()  # spec keys beyond path/type/mode
    default_mode: str = "0644"
    note: str = ""  # one line for `spec example` and the generated README

    @property
    def has_value(self) -> bool:
        return "value" in self.keys


_INT_KEYS = frozenset({"value"})
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


def _unsigned(name: str, bits: int, hex_digits: int | None, note: str) -> DebugfsType:
    fmt = "{:d}\n" if hex_digits is None else "0x{:0" + str(hex_digits) + "x}\n"
    return DebugfsType(
        name=name,
        kind=Kind.INTEGER,
        c_type=f"u{bits}",
        helper=f"debugfs_create_{name}",
        minimum=0,
        maximum=2**bits - 1,
        read_format=fmt,
        keys=_INT_KEYS,
        note=note,
    )


TYPES: dict[str, DebugfsType] = {
    t.name: t
    for t in (
        DebugfsType(
            name="dir",
            kind=Kind.DIR,
            c_type=None,
            helper="debugfs_create_dir",
            default_mode="0755",
            note="an explicit (possibly empty) directory; parents of other entries are implicit",
        ),
        _unsigned("u8", 8, None, "8-bit unsigned, read and written in decimal"),
        _unsigned("u16", 16, None, "16-bit unsigned, decimal"),
        _unsigned("u32", 32, None, "32-bit unsigned, decimal"),
        _unsigned("u64", 64, None, "64-bit unsigned, decimal"),
        _unsigned("x8", 8, 2, "8-bit unsigned, read back as hex (0x05)"),
        _unsigned("x16", 16, 4, "16-bit unsigned, hex"),
        _unsigned("x32", 32, 8, "32-bit unsigned, hex"),
        _unsigned("x64", 64, 16, "64-bit unsigned, hex"),
        DebugfsType(
            name="bool",
            kind=Kind.BOOL,
            c_type="bool",
            helper="debugfs_create_bool",
            read_format="{}\n",  # Y or N; writes parse with kstrtobool
            keys=_INT_KEYS,
            note="reads as Y or N; accepts 1/0, y/n, on/off",
        ),
        DebugfsType(
            name="size_t",
            kind=Kind.INTEGER,
            c_type="size_t",
            helper="debugfs_create_size_t",
            minimum=0,
            # size_t is 32 bits on 32-bit architectures: keep the module portable.
            maximum=U32_MAX,
            read_format="{:d}\n",
            keys=_INT_KEYS,
            note="size_t, decimal (limited to 32 bits so the module stays portable)",
        ),
        DebugfsType(
            name="ulong",
            kind=Kind.INTEGER,
            c_type="unsigned long",
            helper="debugfs_create_ulong",
            minimum=0,
            maximum=U32_MAX,
            read_format="{:d}\n",
            keys=_INT_KEYS,
            note="unsigned long, decimal (limited to 32 bits so the module stays portable)",
        ),
        DebugfsType(
            name="atomic_t",
            kind=Kind.INTEGER,
            c_type="atomic_t",
            helper="debugfs_create_atomic_t",
            minimum=-(2**31),
            maximum=2**31 - 1,
            read_format="{:d}\n",
            keys=_INT_KEYS,
            note="atomic_t (signed 32-bit), decimal",
        ),
        DebugfsType(
            name="blob",
            kind=Kind.BLOB,
            c_type="char",
            helper="debugfs_create_blob",
            writes=Writes.SINCE_6_8,
            read_format="{}",
            keys=frozenset({"value"}),
            default_mode="0444",
            note="fixed bytes; read-only before Linux 6.8 whatever the mode",
        ),
        DebugfsType(
            name="string",
            kind=Kind.STRING,
            c_type="char",
            helper="debugfs_create_file",
            read_format="{}",
            keys=frozenset({"value", "size"}),
            note="a char buffer: a write replaces it, a read returns what was last written",
        ),
        DebugfsType(
            name="u32_array",
            kind=Kind.U32_ARRAY,
            c_type="u32",
            helper="debugfs_create_u32_array",
            minimum=0,
            maximum=U32_MAX,
            writes=Writes.NO,
            keys=frozenset({"value", "length"}),
            default_mode="0444",
            note="a fixed-length u32 array, read as space-separated decimals; read-only",
        ),
        DebugfsType(
            name="seq",
            kind=Kind.SEQ,
            c_type=None,
            helper="debugfs_create_file",
            writes=Writes.NO,
            default_mode="0444",
            note="a seq_file; you write its show() in user/<name>.c",
        ),
        DebugfsType(
            name="custom",
            kind=Kind.CUSTOM,
            c_type=None,
            helper="debugfs_create_file",
            keys=frozenset({"value"}),
            note="read/write handlers whose bodies you write in user/<name>.c",
        ),
    )
}

COMMON_KEYS = frozenset({"path", "type", "mode"})

# Limits that keep generated modules sane; each error message quotes them.
MAX_STRING_SIZE = 4096  # one page: a debugfs text file, not a data channel
MAX_CUSTOM_VALUE = 255  # the custom starter code keeps it in stack buffers
MAX_BLOB_BYTES = 65536
MAX_ARRAY_LENGTH = 1024
