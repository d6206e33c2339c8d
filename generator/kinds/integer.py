"""Integers behind debugfs_create_<type>(): u8 ... u64, x8 ... x64, size_t, ulong, atomic_t."""

from __future__ import annotations

from ..c_literals import LINE_WIDTH, c_int
from ..spec_model import Check, DebugfsType, Entry, Kind, Parsing, describe, is_int, printf_format

U32_MAX = 2**32 - 1
ZERO_NOTE = " /* statics start at 0 */"


def zero_note(c_type: str, var: str) -> str:
    """The comment of a zero-initialised static, where it fits in 100 columns."""
    return ZERO_NOTE if len(f"static {c_type} {var};{ZERO_NOTE}") <= LINE_WIDTH else ""


class Integer(Kind):
    name = "integer"
    order = 10
    keys = frozenset({"value"})
    per_instance = True
    needs_field = True

    def types(self) -> tuple[DebugfsType, ...]:
        def unsigned(name: str, bits: int, hex_digits: int | None, note: str) -> DebugfsType:
            fmt = "{:d}\n" if hex_digits is None else "0x{:0" + str(hex_digits) + "x}\n"
            return DebugfsType(name, self, f"u{bits}", f"debugfs_create_{name}", 0, 2**bits - 1, read_format=fmt, note=note)

        return (
            unsigned("u8", 8, None, "8-bit unsigned, read and written in decimal"),
            unsigned("u16", 16, None, "16-bit unsigned, decimal"),
            unsigned("u32", 32, None, "32-bit unsigned, decimal"),
            unsigned("u64", 64, None, "64-bit unsigned, decimal"),
            unsigned("x8", 8, 2, "8-bit unsigned, read back as hex (0x05)"),
            unsigned("x16", 16, 4, "16-bit unsigned, hex"),
            unsigned("x32", 32, 8, "32-bit unsigned, hex"),
            unsigned("x64", 64, 16, "64-bit unsigned, hex"),
            # size_t and unsigned long are 32 bits on 32-bit architectures: keep the module portable.
            DebugfsType("size_t", self, "size_t", "debugfs_create_size_t", 0, U32_MAX, read_format="{:d}\n",
                        note="size_t, decimal (limited to 32 bits so the module stays portable)"),
            DebugfsType("ulong", self, "unsigned long", "debugfs_create_ulong", 0, U32_MAX, read_format="{:d}\n",
                        note="unsigned long, decimal (limited to 32 bits so the module stays portable)"),
            DebugfsType("atomic_t", self, "atomic_t", "debugfs_create_atomic_t", -(2**31), 2**31 - 1, read_format="{:d}\n",
                        note="atomic_t (signed 32-bit), decimal"),
        )

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        raw, t = p.item.get("value"), p.type
        if raw is None:
            return 0, {}
        if not is_int(raw):
            p.error("value", f"a {t.name} value must be an integer, not {describe(raw)}", "write value = 5 or value = 0x05 (no quotes).")
            return None, {}
        assert t.minimum is not None and t.maximum is not None and isinstance(raw, int)
        if not t.minimum <= raw <= t.maximum:
            p.error("value", f"value {raw} is out of range for {t.name} ({t.minimum}..{t.maximum})",
                    f"use a value from {t.minimum} to {t.maximum}, or a wider type.")
        return raw, {}

    def template_fields(self, e: Entry, var: str) -> dict[str, object]:
        """The declaration's initializer: atomic_t always has one, a zero elsewhere none (checkpatch)."""
        value = e.number
        if e.type.c_type == "atomic_t":
            return {"initializer": f"ATOMIC_INIT({value})"}
        return {"initializer": c_int(value, e.type.c_type or "", e.type.name.startswith("x")) if value else "",
                "zero_note": zero_note(e.type.c_type or "", var)}

    def members(self, e: Entry) -> list[str]:
        return [f"{e.type.c_type} {e.field};"]

    def demo_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        if e.type.c_type == "atomic_t":
            return [("", f"atomic_set(&{obj}->{e.field}, {e.number})")] if e.number else []
        init = self.template_fields(e, var)["initializer"]
        return [(f"{obj}->{e.field}", str(init))] if init else []

    def includes_for(self, e: Entry) -> frozenset[str]:
        return frozenset({"atomic"}) if e.type.c_type == "atomic_t" else self.includes

    def reads(self, e: Entry, version: tuple[int, ...]) -> bytes | None:
        assert e.type.read_format is not None
        return e.type.read_format.format(e.number).encode()

    def shown_value(self, e: Entry) -> str:
        return "`" + (self.reads(e, ()) or b"").decode().strip() + "`"

    def _range(self, e: Entry) -> tuple[int, int]:
        lo, hi = e.type.minimum, e.type.maximum
        assert lo is not None and hi is not None
        return (0 if lo <= 0 <= hi else lo), hi

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        if not self.writable(e, version):
            return [self.rejects_writes_check(e, p, version)]
        fmt = e.type.read_format
        assert fmt is not None
        out = []
        lo, hi = self._range(e)
        for v in (lo, hi):
            out.append(Check(f"{e.path}: write {v}, read it back", f"put_ok {p} '{v}\\n' && same {p} {printf_format(fmt.format(v).encode())}"))
        back = printf_format(fmt.format(hi).encode())
        out.append(Check(f"{e.path}: a garbage write is rejected", f"put_fails {p} 'zz\\n' && same {p} {back}"))
        return out

    def changing_write(self, e: Entry) -> tuple[bytes, bytes] | None:
        lo, hi = self._range(e)
        return f"{hi if e.number != hi else lo}\n".encode(), f"{e.number}\n".encode()

    def stress_values(self, e: Entry) -> tuple[list[bytes], bool]:
        lo, hi = self._range(e)
        return [f"{v}\n".encode() for v in (lo, hi, (lo + hi) // 2)], True

    def nominal_size(self, e: Entry) -> int | None:
        return len(str(e.type.maximum)) + 1


KIND = Integer()
