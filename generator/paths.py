"""Where dbgscaffold keeps things between runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$DBGSCAFFOLD_CACHE, else $XDG_CACHE_HOME/dbgscaffold, else ~/.cache/dbgscaffold."""
    explicit = os.environ.get("DBGSCAFFOLD_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dbgscaffold"
