"""Exit codes and the exceptions that carry a user-facing message to the CLI.

Every command maps its outcome to one of these codes; the CLI prints the
message of a UserError and exits with its code, never with a traceback.
"""

from __future__ import annotations

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
