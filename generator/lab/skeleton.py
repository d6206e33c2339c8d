"""Skeletons from TODO markers, and which TODO a source line falls in.

In a solution source:

    /* TODO 2: create the blob file "b" */    opens a region of task 2 (kept)
    ...                                        dropped from the skeleton
    /* skel: return 0; */                      becomes `return 0;` in the skeleton
    /* END TODO 2 */                           closes it (dropped)

Pure: skeleton_text(), todo_at().
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserError
from ..spec import Problem

_OPEN = re.compile(r"^(\s*)/\* TODO (\d+): (.*\S) \*/\s*$")
_CLOSE = re.compile(r"^\s*/\* END TODO (\d+) \*/\s*$")
_SKEL = re.compile(r"^(\s*)/\* skel: (.*\S) \*/\s*$")
_MARKERISH = re.compile(r"/\*\s*(?:END\s+)?TODO\b|/\*\s*skel:")
_FUNCTION_END = re.compile(r"^}")


class SkeletonError(UserError):
    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, problems)))


@dataclass(frozen=True)
class TodoRegion:
    task: int
    text: str  # what the TODO line asks
    start: int  # 1-based line of the TODO marker (in the file it was found in)
    end: int  # line of its END marker (0 in a skeleton: no end marker)
    file: str = ""


def skeleton_text(text: str, source: str = "<source>", only: frozenset[int] | None = None) -> tuple[str, list[TodoRegion]]:
    """The skeleton of one solution file and the regions found (solution line numbers).
    With `only`, just those tasks' regions are stripped (the others keep the solution's
    lines, markers included): selfcheck's one-task mutants.
    Nested, unclosed, mismatched or malformed markers raise SkeletonError (file:line, fix)."""
    out: list[str] = []
    regions: list[TodoRegion] = []
    problems: list[Problem] = []
    current: tuple[int, str, int] | None = None  # task, text, line
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        bare = line.rstrip("\n")
        opened, closed, skel = _OPEN.match(bare), _CLOSE.match(bare), _SKEL.match(bare)
        region = current[0] if current is not None else int(opened.group(2)) if opened else None
        kept = only is not None and region is not None and region not in only  # a region left as in the solution
        if kept:
            out.append(line)
        if opened:
            if current is not None:
                problems.append(Problem(source, number, "", f"TODO {opened.group(2)} opens inside TODO {current[0]} (opened at line {current[2]}); regions do not nest",
                                        f"close it first with /* END TODO {current[0]} */"))
            current = (int(opened.group(2)), opened.group(3), number)
            if not kept:
                out.append(line)
        elif closed:
            n = int(closed.group(1))
            if current is None:
                problems.append(Problem(source, number, "", f"END TODO {n} without an open TODO {n}", f"add /* TODO {n}: ... */ above, or remove this line"))
            elif current[0] != n:
                problems.append(Problem(source, number, "", f"END TODO {n} closes TODO {current[0]} (opened at line {current[2]})",
                                        f"write /* END TODO {current[0]} */"))
                current = None
            else:
                regions.append(TodoRegion(n, current[1], current[2], number))
                current = None
        elif skel:
            if current is None:
                problems.append(Problem(source, number, "", "a skel: line outside a TODO region", "move it between /* TODO n: ... */ and /* END TODO n */"))
            elif not kept:
                out.append(skel.group(1) + skel.group(2) + "\n")
        elif _MARKERISH.search(bare):
            problems.append(Problem(source, number, "", f"malformed marker: {bare.strip()!r}",
                                    "write '/* TODO n: text */', '/* END TODO n */' or '/* skel: CODE */' alone on the line"))
        elif current is None:
            out.append(line)
    if current is not None:
        problems.append(Problem(source, current[2], "", f"TODO {current[0]} is never closed", f"add /* END TODO {current[0]} */ after its code"))
    if problems:
        raise SkeletonError(problems)
    return "".join(out), regions


def todo_at(text: str, line: int) -> TodoRegion | None:
    """The TODO region a line of a student's file falls in: the last `TODO n`
    marker at or above it, unless its END marker or the end of the function
    (a `}` in column 0) comes between."""
    found: TodoRegion | None = None
    for number, raw in enumerate(text.splitlines()[:line], 1):
        if (m := _OPEN.match(raw)) is not None:
            found = TodoRegion(int(m.group(2)), m.group(3), number, 0)
        elif found is not None and number < line and (_CLOSE.match(raw) or _FUNCTION_END.match(raw)):
            found = None
    return found
