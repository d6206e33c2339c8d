"""A register dump: debugfs_create_regset32() over a block of 32-bit registers.

The generated module backs the block with its own memory so that it runs
anywhere (the VM included); a driver points the regset's .base at its
ioremap()ed registers instead (the generated header says how).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..c_literals import c_int
from ..spec_model import Check, DebugfsType, Entry, Kind, Parsing, Writes, describe, is_int

U32_MAX = 2**32 - 1
MAX_REGISTERS = 256
MAX_OFFSET = 0xFFFC  # a 64 KiB block
REGISTER_KEYS = ("name", "offset", "value")
_REGISTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}\Z")


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    value: int = 0  # what the generated module's stand-in block holds

    @property
    def word(self) -> int:
        return self.offset // 4


class Regset32(Kind):
    name = "regset32"
    order = 85
    keys = frozenset({"registers"})
    suffixes = ("", "_regs", "_mem")
    includes = frozenset({"kernel"})  # ARRAY_SIZE
    per_instance = True
    needs_field = True

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("regset32", self, "u32", "debugfs_create_regset32", writes=Writes.NO, default_mode="0444",
                            note="32-bit registers read as NAME = 0x%08x lines; read-only"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        raw = p.item.get("registers")
        example = 'write registers = [ { name = "CTRL", offset = 0x0 }, { name = "STATUS", offset = 0x4 } ].'
        if raw is None:
            p.error(None, "a regset32 entry needs 'registers'", example)
            return None, {}
        if not isinstance(raw, list) or not raw:
            p.error("registers", f"'registers' must be a non-empty array of tables, not {describe(raw) if raw != [] else 'empty'}", example)
            return None, {}
        if len(raw) > MAX_REGISTERS:
            p.error("registers", f"{len(raw)} registers; at most {MAX_REGISTERS}", "split them over several regset32 entries.")
        registers: list[Register] = []
        names: dict[str, int] = {}
        offsets: dict[int, str] = {}
        for n, reg in enumerate(raw):
            at = f"register {n}"
            if not isinstance(reg, dict):
                p.error("registers", f"{at} must be a table, not {describe(reg)}", example)
                continue
            for key in reg:
                if key not in REGISTER_KEYS:
                    p.error("registers", f"{at}: unknown field '{key}'", "a register has name, offset and (for the generated module's stand-in memory) value.")
            name, offset, value = reg.get("name"), reg.get("offset"), reg.get("value", 0)
            ok = True
            if not isinstance(name, str) or not _REGISTER_NAME.match(name):
                p.error("registers", f"{at}: name {name!r} is not a C-like identifier of at most 32 characters", 'write name = "CTRL".')
                ok = False
            elif name in names:
                p.error("registers", f"{at}: name '{name}' is also register {names[name]}'s", "give each register its own name.")
                ok = False
            if not (is_int(offset) and isinstance(offset, int) and 0 <= offset <= MAX_OFFSET):
                p.error("registers", f"{at}: offset {offset!r} is not an integer from 0 to {MAX_OFFSET:#x}", "write offset = 0x4.")
                ok = False
            elif offset % 4:
                p.error("registers", f"{at}: offset {offset:#x} is not a multiple of 4 (a 32-bit register)",
                        f"use {offset - offset % 4:#x} or {offset - offset % 4 + 4:#x}.")
                ok = False
            elif offset in offsets:
                p.error("registers", f"{at}: offset {offset:#x} is also register '{offsets[offset]}''s", "give each register its own offset.")
                ok = False
            if not (is_int(value) and isinstance(value, int) and 0 <= value <= U32_MAX):
                p.error("registers", f"{at}: value {value!r} is not a u32", "write value = 0x1.")
                ok = False
            if ok:
                assert isinstance(name, str) and isinstance(offset, int) and isinstance(value, int)
                names[name], offsets[offset] = n, name
                registers.append(Register(name, offset, value))
        return None, {"registers": tuple(registers)}

    @staticmethod
    def registers(e: Entry) -> tuple[Register, ...]:
        regs = e.param("registers", ())
        return regs if isinstance(regs, tuple) else ()

    def template_fields(self, e: Entry, var: str) -> dict[str, object]:
        regs = self.registers(e)
        return {"words": max((r.word for r in regs), default=0) + 1, "set_words": tuple(r for r in regs if r.value)}

    def members(self, e: Entry) -> list[str]:
        words = self.template_fields(e, "")["words"]
        return [f"struct debugfs_regset32 {e.field};", f"u32 {e.field}_mem[{words}]; /* stands in for the registers */"]

    def add_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        return [(f"{obj}->{e.field}.regs", f"{var}_regs"), (f"{obj}->{e.field}.nregs", f"ARRAY_SIZE({var}_regs)")]

    def demo_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        return [(f"{obj}->{e.field}.base", f"(void __force __iomem *){obj}->{e.field}_mem"),
                *((f"{obj}->{e.field}_mem[{r.word}]", c_int(r.value, "u32", True)) for r in self.registers(e) if r.value)]

    def reads(self, e: Entry, version: tuple[int, ...]) -> bytes | None:
        return "".join(f"{r.name} = 0x{r.value:08x}\n" for r in self.registers(e)).encode()

    def shown_value(self, e: Entry) -> str:
        regs = self.registers(e)
        return "`" + ", ".join(f"{r.name}@{r.offset:#x}" for r in regs[:4]) + (" ..." if len(regs) > 4 else "") + "`"

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        return [self.rejects_writes_check(e, p, version)]


KIND = Regset32()
