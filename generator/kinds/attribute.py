"""A get/set attribute: DEFINE_DEBUGFS_ATTRIBUTE + debugfs_create_file_unsafe(), bodies in user/<entry>.c.

The kernel's recommended pattern for a simple value with side effects: the
kernel parses writes (kstrtoull, base 0) and prints reads through the format;
the user's get() and set() see and produce a u64.
"""

from __future__ import annotations

import re

from ..c_literals import c_int
from ..spec_model import Check, DebugfsType, Entry, Kind, Parsing, describe, is_int, quoted

U64_MAX = 2**64 - 1
DEFAULT_FORMAT = "%llu\n"
GET_BUF = 24  # simple_attr's get_buf: a read longer than 23 bytes is cut
# one conversion of an unsigned long long: flags, width, ll, u/x/X
_CONVERSION = re.compile(r"%([#0-]*)([0-9]{0,2})ll([uxX])")


def python_format(fmt: str) -> str:
    """The C format as a Python %-format (they agree on these flags and conversions)."""
    return _CONVERSION.sub(lambda m: f"%{m.group(1)}{m.group(2)}{'d' if m.group(3) == 'u' else m.group(3)}", fmt)


def shape(fmt: str) -> str:
    """An extended regular expression every read through `fmt` matches (trailing newline dropped)."""
    body = fmt[:-1] if fmt.endswith("\n") else fmt
    m = _CONVERSION.search(body)
    assert m is not None
    digits = "[0-9]" if m.group(3) == "u" else "[0-9a-fA-FxX]"
    return _ere_escape(body[: m.start()]) + f" *{digits}+ *" + _ere_escape(body[m.end() :])


def _ere_escape(text: str) -> str:
    return "".join("\\" + c if c in ".[]()*+?{}|^$\\" else c for c in text)


class Attribute(Kind):
    name = "attribute"
    order = 80
    keys = frozenset({"format", "value"})
    suffixes = ("", "_fops", "_fops_open", "_get", "_set")  # _fops_open: DEFINE_DEBUGFS_ATTRIBUTE's
    includes = frozenset({"fs"})
    user_role = "get() and set() functions"
    per_instance = True  # get() and set() get the device as data
    takes_field = True  # the starting get() and set() keep the value there

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("attribute", self, "u64", "debugfs_create_file_unsafe", 0, U64_MAX,
                            note="a u64 through get()/set() you write in user/<name>.c, printed with its format"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        fmt = p.item.get("format", DEFAULT_FORMAT)
        fix = 'write format = "%llu\\n" (or "0x%08llx\\n", "%#llx\\n": one %ll[uxX] conversion, flags #0- and a width).'
        if not isinstance(fmt, str):
            p.error("format", f"format must be a string, not {describe(fmt)}", fix)
            fmt = None
        elif any(not 0x20 <= ord(c) < 0x7F for c in fmt.removesuffix("\n")):
            p.error("format", "format may hold printable ASCII and a final newline only", fix)
            fmt = None
        elif len(_CONVERSION.findall(fmt)) != 1 or fmt.count("%") != 1:
            p.error("format", f"format {fmt!r} must hold exactly one conversion of a u64 (%llu, %llx or %llX) and no other %", fix)
            fmt = None
        elif (m := _CONVERSION.search(fmt)) and ("#" in m.group(1) and m.group(3) == "u" or "0" in m.group(1) and "-" in m.group(1)):
            p.error("format", f"format {fmt!r}: gcc warns about its flags ('#' applies to %llx/%llX only; '0' and '-' exclude each other)", fix)
            fmt = None
        elif len(python_format(fmt) % U64_MAX) > GET_BUF - 1:
            p.error("format", f"format {fmt!r} prints up to {len(python_format(fmt) % U64_MAX)} bytes; the kernel keeps {GET_BUF - 1}",
                    "shorten the text around the conversion.")
            fmt = None
        raw = p.item.get("value", 0)
        if not (is_int(raw) and isinstance(raw, int) and 0 <= raw <= U64_MAX):
            p.error("value", f"an attribute's starting value must be an integer from 0 to {U64_MAX}, not {raw!r}", "write value = 5.")
            raw = None
        return raw, ({"format": fmt} if fmt is not None else {})

    def create_call(self, e: Entry, var: str, parent: str, obj: str = "") -> tuple[str, tuple[str, ...]]:
        return "debugfs_create_file_unsafe", (f'"{e.basename}"', e.mode_octal, parent, obj or "NULL", f"&{var}_fops")

    def members(self, e: Entry) -> list[str]:
        return [f"u64 {e.field};"] if e.field else []

    def demo_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        return [(f"{obj}->{e.field}", c_int(e.number, "u64"))] if e.field and e.number else []

    def template_fields(self, e: Entry, var: str) -> dict[str, object]:
        return {"format": e.param("format", DEFAULT_FORMAT)}

    def shown_value(self, e: Entry) -> str:
        return "`" + (python_format(str(e.param("format", DEFAULT_FORMAT))) % e.number).strip() + "` (your get())"

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        """What holds whatever get() and set() do: reads come out in the format, the kernel
        refuses a write that is not a number (simple_attr_write), or any write without set()."""
        fmt = str(e.param("format", DEFAULT_FORMAT))
        out = []
        if e.readable:
            out.append(Check(f"{e.path}: reads a number in its format",
                             f"_v=$(cat {p}) || exit 1; printf '%s\\n' \"$_v\" | grep -Eqx {quoted(shape(fmt))} "
                             f"|| {{ diag \"read '$_v', not in the format {fmt.encode('unicode_escape').decode()}\"; exit 1; }}"))
        if e.writable_mode:
            out.append(Check(f"{e.path}: a write that is no number is refused (EINVAL)", f"put_fails {p} 'zz\\n' 'Invalid argument'"))
        else:
            out.append(Check(f"{e.path}: a write is refused even for root (no set())", f"put_fails {p} '1\\n'"))
        return out

    def stress_values(self, e: Entry) -> tuple[list[bytes], bool]:
        return [b"0\n", b"1\n", f"{U64_MAX}\n".encode()], False  # set() decides what it accepts

    def nominal_size(self, e: Entry) -> int | None:
        return GET_BUF


KIND = Attribute()
