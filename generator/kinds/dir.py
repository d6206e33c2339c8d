"""An explicit (possibly empty) directory: debugfs_create_dir()."""

from __future__ import annotations

from ..spec_model import DebugfsType, Kind


class Directory(Kind):
    name = "dir"
    order = 0
    directory = True
    takes_mode = False
    no_mode_because = "a directory takes no mode: debugfs_create_dir() always makes it 0755"

    def types(self) -> tuple[DebugfsType, ...]:
        return (DebugfsType("dir", self, helper="debugfs_create_dir", default_mode="0755",
                            note="an explicit (possibly empty) directory; parents of other entries are implicit"),)


KIND = Directory()
