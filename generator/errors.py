"""Exit codes and the exceptions that carry a user-facing message to the CLI.

Every command maps its outcome to one of these codes; the CLI prints the
message of a UserError and exits with its code, never with a traceback.
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_CHECKS_FAILED = 1  # the thing ran and something it checked is wrong
EXIT_USAGE = 2  # bad command line, spec, config or other input; nothing written
EXIT_BUILD = 3  # kbuild failed
EXIT_ENVIRONMENT = 4  # a tool, kernel or headers are missing
EXIT_TIMEOUT = 5
EXIT_CRASH = 6


class UserError(Exception):
    """A problem the user can fix; `str()` says what, where and how."""

    exit_code = EXIT_USAGE


class EnvironmentProblem(UserError):
    exit_code = EXIT_ENVIRONMENT


# An OSError that is the machine's state, not a bug: what it means, and how to fix it.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: ("no space left on the device", "free space there"),
    errno.EDQUOT: ("the disk quota is used up", "free space there"),
    errno.EROFS: ("the file system is read-only", "use a writable place"),
    errno.EACCES: ("permission denied", "give yourself access to it, or use another place"),
    errno.EPERM: ("operation not permitted", "use a place you may write to"),
}


def environment_problem(exc: OSError, cache: str) -> EnvironmentProblem | None:
    """The exit-4 message for an OSError a full, read-only or foreign disk causes (None for
    any other): what happened to which file, and a Fix naming the cache when it was there."""
    known = _ENVIRONMENT_ERRNOS.get(exc.errno or 0)
    if known is None:
        return None
    what, fix = known
    where = str(exc.filename) if exc.filename else "a file"
    if where.startswith(cache.rstrip("/") + "/") or where == cache:
        fix = f"{fix}, or set DBGSCAFFOLD_CACHE to a directory of yours on a disk with room (the cache is {cache})"
    return EnvironmentProblem(f"{where}: error: {what}. Fix: {fix}.")
