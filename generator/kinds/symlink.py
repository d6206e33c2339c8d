"""A symbolic link to another entry of the spec: debugfs_create_symlink()."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from ..spec_model import Check, Collector, DebugfsType, Entry, Kind, Parsing, describe, printf_format, quoted


class Symlink(Kind):
    name = "symlink"
    order = 90
    keys = frozenset({"target"})
    takes_mode = False
    no_mode_because = "a symlink takes no mode: debugfs makes every link 0777 and checks the target's mode"
    suffixes = ()  # it needs no C object of its own

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("symlink", self, helper="debugfs_create_symlink", default_mode="0777",
                            note="a link to another entry of the spec (target = its path)"),)

    def parse(self, p: Parsing) -> tuple[object, dict[str, object]]:
        raw = p.item.get("target")
        if raw is None:
            p.error(None, "a symlink needs a 'target'", 'add target = "path/of/another/entry".')
            return None, {}
        if not isinstance(raw, str):
            p.error("target", f"'target' must be a string, not {describe(raw)}", 'write target = "subdir/c".')
            return None, {}
        if not raw.strip("/"):
            p.error("target", "'target' is empty", 'set target to the path of another entry, e.g. target = "subdir/c".')
            return None, {}
        return None, {"target": raw.strip("/")}

    @staticmethod
    def target(e: Entry) -> str:
        return str(e.param("target", ""))

    @staticmethod
    def link_text(e: Entry) -> str:
        """What the link holds: the target relative to the link's directory."""
        return posixpath.relpath(Symlink.target(e), e.parent or ".")

    def check_tree(self, e: Entry, by_path: Mapping[str, Entry], directories: frozenset[str], out: Collector) -> None:
        target, where = self.target(e), f"entry #{e.index} '{e.path}'"
        if not target:
            return
        if target == e.path:
            out.error(e.line, where, "the symlink points at itself", "set target to the path of another entry.")
        elif target in by_path and by_path[target].kind is self:
            out.error(e.line, where, f"the target '{target}' is itself a symlink", f"point it at '{self.target(by_path[target])}' directly.")
        elif target not in by_path and target not in directories:
            out.error(e.line, where, f"the target '{target}' is not an entry or directory of this spec",
                      "set target to the path of another entry (relative to the module's root directory).")

    def create_call(self, e: Entry, var: str, parent: str, obj: str = "") -> tuple[str, tuple[str, ...]]:
        return "debugfs_create_symlink", (f'"{e.basename}"', parent, f'"{self.link_text(e)}"')

    def shown_value(self, e: Entry) -> str:
        return f"-> `{self.target(e)}`"

    def checks(self, e: Entry, path: str, version: tuple[int, ...]) -> list[Check]:
        p, text = quoted(path), self.link_text(e)
        return [
            Check(f"{e.path}: a symlink to {text}",
                  f"[ -L {p} ] || {{ diag 'no symlink {path}'; exit 1; }}; _t=$(readlink {p}); "
                  f"[ \"$_t\" = {printf_format(text.encode())} ] || {{ diag \"it points at '$_t'\"; exit 1; }}"),
            Check(f"{e.path}: the link resolves", f"[ -e {p} ] || {{ diag '{path} dangles'; exit 1; }}"),
        ]


KIND = Symlink()
