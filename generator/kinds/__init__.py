"""Every kind of debugfs entry a spec may use, found by module: one kind per file here.

A kind module defines KIND, an instance of spec_model.Kind, and has a template
snippet module_templates/module/templates/kinds/<name>.j2; nothing else lists
kinds, so adding one is adding those two files.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..spec_model import DebugfsType, Kind


def _discover() -> tuple[Kind, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, Kind):
            found.append(kind)
    return tuple(sorted(found, key=lambda k: (k.order, k.name)))


KINDS: tuple[Kind, ...] = _discover()
TYPES: dict[str, DebugfsType] = {t.name: t for k in KINDS for t in k.types()}
COMMON_KEYS = frozenset({"path", "type", "mode"})
ALL_KEYS = tuple(sorted(COMMON_KEYS | {key for k in KINDS for key in k.keys}))
