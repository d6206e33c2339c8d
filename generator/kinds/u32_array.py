"""A fixed-length u32 array behind struct debugfs_u32_array: read-only, space-separated decimals."""

from __future__ import annotations

from ..spec_model import Check, DebugfsType, Entry, Kind, Parsing, Writes, describe, is_int

U32_MAX = 2**32 - 1
MAX_ARRAY_LENGTH = 1024


class U32Array(Kind):
    name = "u32_array"
    order = 45
    keys = frozenset({"value", "length"})
    suffixes = ("", "_data")
    includes = frozenset({"kernel"})  # ARRAY_SIZE

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("u32_array", self, "u32", "debugfs_create_u32_array", 0, U32_MAX, writes=Writes.NO, default_mode="0444",
                            note="a fixed-length u32 array, read as space-separated decimals; read-only"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        raw = p.item.get("value", [])
        raw_len = p.item.get("length")
        values: list[int] = []
        if not isinstance(raw, list):
            p.error("value", f"a u32_array value must be an array of integers, not {describe(raw)}", "write value = [1, 2, 3].")
            raw = []
        for n, v in enumerate(raw):
            if not is_int(v) or not 0 <= v <= U32_MAX:
                p.error("value", f"element {n} ({v!r}) is not a u32 (0..{U32_MAX})", "use integers in that range.")
            else:
                values.append(v)
        if raw_len is None:
            length = len(raw)
        elif not is_int(raw_len):
            p.error("length", f"length must be an integer, not {describe(raw_len)}", "write length = 4.")
            return None, {}
        else:
            assert isinstance(raw_len, int)
            length = raw_len
        if not 1 <= length <= MAX_ARRAY_LENGTH:
            p.error("length" if raw_len is not None else None, f"array length {length} is out of range (1..{MAX_ARRAY_LENGTH})",
                    "give length = N and up to N values.")
        elif len(raw) > length:
            p.error("value", f"{len(raw)} values do not fit length {length}", f"raise length to {len(raw)} or drop values.")
        return tuple(values), {"length": length}

    def create_call(self, e: Entry, var: str, parent: str, obj: str = "") -> tuple[str, tuple[str, ...]]:
        # through the compat header: the helper's signature changed in 5.9
        return "dbgscaffold_create_u32_array", (f'"{e.basename}"', e.mode_octal, parent, f"&{var}")

    def template_fields(self, e: Entry, var: str) -> dict[str, object]:
        return {"length": e.param("length")}

    def _all(self, e: Entry) -> list[int]:
        values = list(e.numbers)
        return values + [0] * (e.int_param("length") - len(values))

    def reads(self, e: Entry, version: tuple[int, ...]) -> bytes | None:
        return (" ".join(map(str, self._all(e))) + "\n").encode()

    def shown_value(self, e: Entry) -> str:
        full = self._all(e)
        return "`" + " ".join(map(str, full[:8])) + (" ..." if len(full) > 8 else "") + "`"

    def behaviour_checks(self, e: Entry, p: str, version: tuple[int, ...]) -> list[Check]:
        return [self.rejects_writes_check(e, p, version)]


KIND = U32Array()
