"""A file whose read and write handlers the user writes, in user/<entry>.c."""

from __future__ import annotations

from ..spec_model import DebugfsType, Entry, Kind, Parsing
from .text_values import parse_text, shown_text

MAX_CUSTOM_VALUE = 255  # the starter code keeps it in stack buffers
MIN_STATE = 64


class Custom(Kind):
    name = "custom"
    order = 70
    keys = frozenset({"value"})
    suffixes = ("", "_fops", "_read", "_write")
    includes = frozenset({"fs"})
    user_role = "read and write handlers"

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("custom", self, helper="debugfs_create_file",
                            note="read/write handlers whose bodies you write in user/<name>.c"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        return parse_text(p, MAX_CUSTOM_VALUE, "shorten it; the starter code keeps it in a small buffer.",
                          "a custom entry's starting value"), {}

    def create_call(self, e: Entry, var: str, parent: str, obj: str = "") -> tuple[str, tuple[str, ...]]:
        return "debugfs_create_file", (f'"{e.basename}"', e.mode_octal, parent, "NULL", f"&{var}_fops")

    def user_state_size(self, e: Entry) -> int:
        """The buffer the starter code in user/<entry>.c keeps the last write in."""
        return max(MIN_STATE, len(e.data) + 1)

    def shown_value(self, e: Entry) -> str:
        return shown_text(e.data)

    def sample_write(self, e: Entry) -> str | None:
        return "hello" if e.writable_mode else None

    def stress_values(self, e: Entry) -> tuple[list[bytes], bool]:
        # the user's handlers decide what they accept
        return [e.data or b"1\n", b"1\n"], False

    def nominal_size(self, e: Entry) -> int | None:
        return self.user_state_size(e)


KIND = Custom()
