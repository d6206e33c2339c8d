"""A seq_file: DEFINE_SHOW_ATTRIBUTE, its show() written by the user in user/<entry>.c."""

from __future__ import annotations

from ..spec_model import DebugfsType, Entry, Kind, Writes


class Seq(Kind):
    name = "seq"
    order = 60
    suffixes = ("", "_show", "_open", "_fops")
    includes = frozenset({"fs"})
    user_role = "show() function"
    per_instance = True  # show() gets the device as m->private

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("seq", self, helper="debugfs_create_file", writes=Writes.NO, default_mode="0444",
                            note="a seq_file; you write its show() in user/<name>.c"),)

    def create_call(self, e: Entry, var: str, parent: str, obj: str = "") -> tuple[str, tuple[str, ...]]:
        return "debugfs_create_file", (f'"{e.basename}"', e.mode_octal, parent, obj or "NULL", f"&{var}_fops")


KIND = Seq()
