"""A problem in a file the user wrote (a spec, a lab manifest), with file:line and a Fix; every problem at once.

Shared by the spec reader, the [test] table and lab manifests, so none of them
imports another's private helpers.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based; 0 when the problem is about the file as a whole
    where: str  # "[module]", "entry #3 'subdir/c'", or "" for the file
    message: str
    fix: str = ""
    warning: bool = False
    column: int = 0

    def __str__(self) -> str:
        loc = self.file
        if self.line:
            loc += f":{self.line}"
            if self.column:
                loc += f":{self.column}"
        parts = [f"{loc}: {'warning' if self.warning else 'error'}: "]
        if self.where:
            parts.append(f"{self.where}: ")
        parts.append(self.message)
        if self.fix:
            parts.append(("" if self.message.endswith((".", "?")) else ".") + f" Fix: {self.fix}")
        return "".join(parts)


class SpecError(UserError):
    """The spec is invalid; carries every problem found, warnings included."""

    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        errors = [p for p in problems if not p.warning]
        head = f"{len(errors)} error{'s' if len(errors) != 1 else ''} in spec"
        super().__init__("\n".join([*map(str, problems), head]))


def syntax_problem(source_name: str, exc: tomllib.TOMLDecodeError) -> Problem:
    msg = str(exc)
    line = col = 0
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        msg = msg[: m.start()].strip()
    elif (m := re.search(r"\(at end of document\)", msg)) is not None:
        msg = msg[: m.start()].strip() + " at the end of the file"
    return Problem(
        source_name,
        line,
        "",
        f"TOML syntax error: {msg}",
        "see https://toml.io; strings need double quotes, e.g. mode = \"0644\".",
        column=col,
    )
