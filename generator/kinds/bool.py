"""A bool behind debugfs_create_bool(): reads Y or N, writes parse with kstrtobool()."""

from __future__ import annotations

from ..spec_model import Check, DebugfsType, Entry, Kind, Parsing, describe
from .integer import zero_note


class Bool(Kind):
    name = "bool"
    order = 20
    keys = frozenset({"value"})
    per_instance = True
    needs_field = True

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("bool", self, "bool", "debugfs_create_bool", read_format="{}\n",
                            note="reads as Y or N; accepts 1/0, y/n, on/off"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        raw = p.item.get("value")
        if raw is None:
            return False, {}
        if not isinstance(raw, bool):
            p.error("value", f"a bool value must be true or false, not {describe(raw)}", "write value = true or value = false (no quotes).")
        return raw, {}

    def template_fields(self, e: Entry, var: str) -> dict[str, object]:
        return {"initializer": "true" if e.value else "", "zero_note": zero_note("bool", var)}

    def members(self, e: Entry) -> list[str]:
        return [f"bool {e.field};"]

    def demo_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        return [(f"{obj}->{e.field}", "true")] if e.value else []

    def reads(self, e: Entry, version: tuple[int, ...]) -> bytes | None:
        return b"Y\n" if e.value else b"N\n"

    def shown_value(self, e: Entry) -> str:
        return "`Y`" if e.value else "`N`"

    def sample_write(self, e: Entry) -> str | None:
        return "N" if self.writable(e, (99,)) else None

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        if not self.writable(e, version):
            return [self.rejects_writes_check(e, p, version)]
        return [
            Check(f"{e.path}: write 1, reads Y", f"put_ok {p} '1\\n' && same {p} 'Y\\n'"),
            Check(f"{e.path}: write 0, reads N", f"put_ok {p} '0\\n' && same {p} 'N\\n'"),
            # debugfs_write_file_bool() returns the full count even when kstrtobool() refuses.
            Check(f"{e.path}: a garbage write changes nothing", f"put {p} 'maybe\\n'; same {p} 'N\\n'"),
        ]

    def changing_write(self, e: Entry) -> tuple[bytes, bytes] | None:
        return (b"0\n", b"1\n") if e.value else (b"1\n", b"0\n")

    def stress_values(self, e: Entry) -> tuple[list[bytes], bool]:
        return [b"1\n", b"0\n", b"Y\n", b"n\n"], True

    def nominal_size(self, e: Entry) -> int | None:
        return 2


KIND = Bool()
