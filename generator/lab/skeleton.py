"""Skeletons from TODO markers, and which TODO a source line falls in.

In a solution source:

    /* TODO 2: create the blob file "b" */    opens a region of task 2 (kept)
    ...                                        dropped from the skeleton
    /* skel: return 0; */                      becomes `return 0;` in the skeleton
    /* END TODO 2 */                           closes it (dropped)

In a shell script (*.sh) the markers are shell comments: `# TODO 2: text`,
`# skel: CODE`, `# END TODO 2`.

Pure: skeleton_text(), todo_at().
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserError
from ..problems import Problem

_FUNCTION_END = re.compile(r"^}")


@dataclass(frozen=True)
class Markers:
    """The TODO marker syntax of one kind of source file."""

    open: re.Pattern  # groups: indentation, task, text
    close: re.Pattern  # group: task
    skel: re.Pattern  # groups: indentation, code
    markerish: re.Pattern  # anything that looks like a marker (to reject malformed ones)
    todo: str  # the three forms, for the fixes in error messages
    end: str
    skel_form: str


C_MARKERS = Markers(
    re.compile(r"^(\s*)/\* TODO (\d+): (.*\S) \*/\s*$"), re.compile(r"^\s*/\* END TODO (\d+) \*/\s*$"),
    re.compile(r"^(\s*)/\* skel: (.*\S) \*/\s*$"), re.compile(r"/\*\s*(?:END\s+)?TODO\b|/\*\s*skel:"),
    "/* TODO {n}: ... */", "/* END TODO {n} */", "/* skel: CODE */")
SH_MARKERS = Markers(
    re.compile(r"^(\s*)# TODO (\d+): (.*\S)\s*$"), re.compile(r"^\s*# END TODO (\d+)\s*$"),
    re.compile(r"^(\s*)# skel: (.*\S)\s*$"), re.compile(r"#\s*(?:END\s+)?TODO\b|#\s*skel:"),
    "# TODO {n}: ...", "# END TODO {n}", "# skel: CODE")
_OPEN, _CLOSE = C_MARKERS.open, C_MARKERS.close  # todo_at() reads C sources (crash locations)


def markers_for(name: str) -> Markers:
    """The marker syntax of a solution file, by its name: shell comments in *.sh, C comments otherwise."""
    return SH_MARKERS if name.endswith(".sh") else C_MARKERS


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
    lines, markers included): selfcheck's one-task mutants. The marker syntax
    follows the file name (markers_for(source)).
    Nested, unclosed, mismatched or malformed markers raise SkeletonError (file:line, fix)."""
    m = markers_for(source)
    out: list[str] = []
    regions: list[TodoRegion] = []
    problems: list[Problem] = []
    current: tuple[int, str, int] | None = None  # task, text, line
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        bare = line.rstrip("\n")
        opened, closed, skel = m.open.match(bare), m.close.match(bare), m.skel.match(bare)
        region = current[0] if current is not None else int(opened.group(2)) if opened else None
        kept = only is not None and region is not None and region not in only  # a region left as in the solution
        if kept:
            out.append(line)
        if opened:
            if current is not None:
                problems.append(Problem(source, number, "",
                                        f"TODO {opened.group(2)} opens inside TODO {current[0]} (opened at line {current[2]}); regions do not nest",
                                        f"close it first with {m.end.format(n=current[0])}"))
            current = (int(opened.group(2)), opened.group(3), number)
            if not kept:
                out.append(line)
        elif closed:
            n = int(closed.group(1))
            if current is None:
                problems.append(Problem(source, number, "", f"END TODO {n} without an open TODO {n}", f"add {m.todo.format(n=n)} above, or remove this line"))
            elif current[0] != n:
                problems.append(Problem(source, number, "", f"END TODO {n} closes TODO {current[0]} (opened at line {current[2]})",
                                        f"write {m.end.format(n=current[0])}"))
                current = None
            else:
                regions.append(TodoRegion(n, current[1], current[2], number))
                current = None
        elif skel:
            if current is None:
                problems.append(Problem(source, number, "", "a skel: line outside a TODO region",
                                        f"move it between {m.todo.format(n='n')} and {m.end.format(n='n')}"))
            elif not kept:
                out.append(skel.group(1) + skel.group(2) + "\n")
        elif m.markerish.search(bare):
            problems.append(Problem(source, number, "", f"malformed marker: {bare.strip()!r}",
                                    f"write '{m.todo.format(n='n').replace('...', 'text')}', '{m.end.format(n='n')}' or '{m.skel_form}' alone on the line"))
        elif current is None:
            out.append(line)
    if current is not None:
        problems.append(Problem(source, current[2], "", f"TODO {current[0]} is never closed", f"add {m.end.format(n=current[0])} after its code"))
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
