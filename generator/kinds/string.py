"""A char buffer with its own file_operations and mutex: a write replaces it, a read returns it.
Per device, the buffer is a member of the device (struct dbgscaffold_textbuf, declared
by the generated header) with its text in a char array beside it."""

from __future__ import annotations

from collections.abc import Mapping

from ..spec_model import Check, Collector, DebugfsType, Entry, Kind, Parsing, data_of, describe, is_int, printf_format
from .text_values import parse_text, shown_text

MAX_STRING_SIZE = 4096  # one page: a debugfs text file, not a data channel
DEFAULT_SIZE = 64


class String(Kind):
    name = "string"
    order = 40
    keys = frozenset({"value", "size"})
    suffixes = ("", "_data")
    includes = frozenset({"fs", "mutex", "slab", "string", "uaccess"})
    per_instance = True
    needs_field = True

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("string", self, "char", "debugfs_create_file",
                            note="a char buffer: a write replaces it, a read returns what was last written"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        data = parse_text(p, None)  # the size checks below bound it
        if data is None:
            return None, {}
        raw = p.item.get("size")
        if raw is None:
            if len(data) >= MAX_STRING_SIZE:
                p.error("value", f"value is {len(data)} bytes; a string holds at most {MAX_STRING_SIZE - 1}", "shorten it.")
                return data, {}
            return data, {"size": max(DEFAULT_SIZE, len(data) + 1)}
        if not is_int(raw):
            p.error("size", f"size must be an integer, not {describe(raw)}", "write size = 32 (bytes, NUL included).")
            return data, {}
        assert isinstance(raw, int)
        if not 2 <= raw <= MAX_STRING_SIZE:
            p.error("size", f"size {raw} is out of range (2..{MAX_STRING_SIZE} bytes, NUL included)", f"use a size from 2 to {MAX_STRING_SIZE}.")
            return data, {}
        if len(data) > raw - 1:
            p.error("value", f"value is {len(data)} bytes but the buffer holds size - 1 = {raw - 1}",
                    f"raise size to at least {len(data) + 1} or shorten the value.")
        return data, {"size": raw}

    def check_tree(self, e: Entry, by_path: Mapping[str, Entry], directories: frozenset[str], out: Collector) -> None:
        if e.instance and b"\0" in e.data:  # add() takes the text up to its NUL
            out.error(e.line, e.where, "a device's string is NUL-terminated text: its value cannot hold a NUL byte", 'remove the "\\u0000".')

    def create_call(self, e: Entry, var: str, parent: str, obj: str = "") -> tuple[str, tuple[str, ...]]:
        return "debugfs_create_file", (f'"{e.basename}"', e.mode_octal, parent, data_of(e, var, obj), f"&{self.fops(e)}")

    def members(self, e: Entry) -> list[str]:
        return [f"struct dbgscaffold_textbuf {e.field};", f"char {e.field}_data[{e.int_param('size')}]; /* its text */"]

    def add_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        # the text is what the caller left in <field>_data (a kzalloc'd device: none), cut to fit
        f = f"{obj}->{e.field}"
        return [("", f"mutex_init(&{f}.lock)"), (f"{f}.size", f"sizeof({f}_data)"), (f"{f}.data", f"{f}_data"),
                (f"{f}.len", f"strnlen({f}_data, sizeof({f}_data) - 1)"), (f"{f}_data[{f}.len]", "'\\0'")]

    def demo_setup(self, e: Entry, var: str, obj: str) -> list[tuple[str, str]]:
        return [("", f"memcpy({obj}->{e.field}_data, {var}_data, sizeof({var}_data))")] if e.data else []

    @staticmethod
    def fops(e: Entry) -> str:
        """The shared file_operations for its access: textbuf_fops, textbuf_ro_fops or textbuf_wo_fops."""
        return {(True, True): "textbuf_fops", (True, False): "textbuf_ro_fops"}.get((e.readable, e.writable_mode), "textbuf_wo_fops")

    def template_fields(self, e: Entry, var: str) -> dict[str, object]:
        return {"fops": self.fops(e), "size": e.param("size")}

    def reads(self, e: Entry, version: tuple[int, ...]) -> bytes | None:
        return e.data

    def shown_value(self, e: Entry) -> str:
        return shown_text(e.data)

    def sample_write(self, e: Entry) -> str | None:
        return "hello" if e.writable_mode else None

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        size = e.int_param("size")
        if not e.writable_mode or not size:
            return []
        room = size - 1
        new = (b"dbgscaffold check\n" * (room // 18 + 1))[:room]
        new = new[:-1] + b"\n" if len(new) > 1 else new
        nf = printf_format(new)
        too_long = printf_format(b"x" * size)
        return [
            Check(f"{e.path}: replace ({len(new)} bytes), exact read-back", f"put_ok {p} {nf} && same {p} {nf}"),
            Check(f"{e.path}: a {size}-byte write is rejected (ENOSPC)", f"put_fails {p} {too_long} 'No space left' && same {p} {nf}"),
            Check(f"{e.path}: an empty write changes nothing", f"put_ok {p} {nf} && : > {p} && same {p} {nf}"),
        ]

    def changing_write(self, e: Entry) -> tuple[bytes, bytes] | None:
        size = e.int_param("size")
        if not e.data or size < 3:  # an empty write changes nothing: the starting text could not come back
            return None
        return (b"x\n" if e.data != b"x\n" else b"y\n"), e.data

    def stress_values(self, e: Entry) -> tuple[list[bytes], bool]:
        size = e.int_param("size")
        if not size:
            return [], False
        return [b"s\n", (b"stress " * size)[: size - 2] + b"\n"], True

    def nominal_size(self, e: Entry) -> int | None:
        return e.int_param("size") or max(1, len(e.data))


KIND = String()
