"""Reading a file the user named, with every I/O failure as a UserError."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError


def read_input(path: Path, *, missing_fix: str, directory_fix: str, limit: int | None = None) -> bytes:
    """The bytes of `path` (at most limit + 1 of them, so callers can refuse more)."""
    try:
        if path.is_dir():
            raise UserError(f"{path}: error: is a directory. Fix: {directory_fix}")
        with open(path, "rb") as fh:
            return fh.read(-1 if limit is None else limit + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: error: no such file. Fix: {missing_fix}") from None
    except PermissionError:
        raise UserError(f"{path}: error: permission denied. Fix: run as a user who can read it (e.g. sudo).") from None
    except OSError as exc:
        raise UserError(f"{path}: error: cannot read: {exc.strerror}.") from None
