"""Fixed bytes behind struct debugfs_blob_wrapper: debugfs_create_blob()."""

from __future__ import annotations

from ..spec_model import Check, DebugfsType, Entry, Kind, Parsing, Writes, printf_format
from .text_values import parse_text, shown_text

MAX_BLOB_BYTES = 65536


class Blob(Kind):
    name = "blob"
    order = 30
    keys = frozenset({"value"})
    suffixes = ("", "_data")
    per_instance = True
    needs_field = True
    instance_read_only = True

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("blob", self, "char", "debugfs_create_blob", writes=Writes.SINCE_6_8, default_mode="0444",
                            note="fixed bytes; read-only before Linux 6.8 whatever the mode"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        return parse_text(p, MAX_BLOB_BYTES, what="blob value"), {}

    def members(self, e: Entry) -> list[str]:
        return [f"struct debugfs_blob_wrapper {e.field};"]

    def demo_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        return [(f"{obj}->{e.field}.data", f"{var}_data"), (f"{obj}->{e.field}.size", f"sizeof({var}_data) - 1")]

    def reads(self, e: Entry, version: tuple[int, ...]) -> bytes | None:
        return e.data

    def shown_value(self, e: Entry) -> str:
        return shown_text(e.data)

    def sample_write(self, e: Entry) -> str | None:
        return None  # writable from 6.8 only: the README shows no write

    def shown_mode(self, e: Entry, version: tuple[int, ...]) -> str:
        """Before 6.8 debugfs masks a blob read-only."""
        mode = (e.mode or 0) & 0o7777
        return f"{mode if self.writable(e, version) else mode & ~0o222:o}"

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        data = e.data
        if self.writable(e, version):
            return [Check(f"{e.path}: writing its own bytes back works", f"put_ok {p} {printf_format(data)} && same {p} {printf_format(data)}")] if data else []
        if version >= (6, 8):
            # From 6.8 a blob always gets the read-write file operations and only its mode
            # bits stop a write: root (CAP_DAC_OVERRIDE) writes a 0444 blob. Say so, skip.
            return [Check(f"{e.path}: write rejection not checked", "diag 'from 6.8 a blob has a write handler whatever its mode; root writes it'; exit 4")]
        return [self.rejects_writes_check(e, p, version, "before 6.8 a blob is read-only" if e.writable_mode else "read-only")]

    def stress_values(self, e: Entry) -> tuple[list[bytes], bool]:
        return [e.data], True

    def nominal_size(self, e: Entry) -> int | None:
        return max(1, len(e.data))


KIND = Blob()
