"""A lab's planted bugs (mutants.toml): the solution with one bug each that passes every check on a stock kernel and a debug kernel catches.

Each [[mutant]] names the detector that catches it (as runner.detectors calls
it: "KASAN", "kmemleak", "sleep-in-atomic checks", "lockdep"), the finding's
title (its start, e.g. "KASAN: use-after-free in c_write") and a text of the
planted line, and lists its edits: `find` must occur exactly once in the
solution file, `replace` takes its place. `lab selfcheck --mutants` runs them:
on a kernel with that detector the run must report the finding with a decoded
frame on the planted line; on a kernel without it every check must pass (which
is why a pass needs its detectors said beside it).

Pure: parse_mutants(), apply(), verdict(). Edges: load_mutants(), write_mutant().
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..problems import Problem, syntax_problem
from ..runner.detectors import BUILT_IN
from .manifest import Lab, LabError

MUTANTS = "mutants.toml"
_KEYS = ("name", "bug", "detector", "finding", "line", "edit")
_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")  # it names a directory too
DETECTORS = tuple(name for _, name in BUILT_IN)  # as a report's header names them


@dataclass(frozen=True)
class Planted:
    """What became of one mutant in a selfcheck run."""

    name: str
    happened: str  # "caught: <finding> at <file:line>", "passes every check (no KASAN here)", ...


@dataclass(frozen=True)
class Edit:
    file: str  # relative to solution/
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str  # what was planted, in words
    detector: str  # what catches it (runner.detectors' name)
    finding: str  # the start of the finding's title
    line: str  # text of the planted line, which the decoded frame must show
    edits: tuple[Edit, ...]


def parse_mutants(text: str, source: str) -> list[Mutant]:
    """mutants.toml text -> its mutants; LabError lists every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabError([syntax_problem(source, exc)]) from None
    problems: list[Problem] = []
    out: list[Mutant] = []
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "[[mutant]]"]  # each mutant's line
    raw = data.get("mutant", [])
    if set(data) - {"mutant"} or not isinstance(raw, list):
        problems.append(Problem(source, 1, "", "only [[mutant]] tables belong here", "one [[mutant]] per planted bug, each with [[mutant.edit]] tables"))
        raw = []
    for i, m in enumerate(raw):
        what = f"mutant #{i + 1}"
        at = starts[i] if i < len(starts) else 1
        if not isinstance(m, dict):
            continue
        for key in m:
            if key not in _KEYS:
                problems.append(Problem(source, at, what, f"unknown key {key!r}", f"use {', '.join(_KEYS)}."))
        for key in _KEYS[:-1]:
            if not isinstance(m.get(key), str) or not m.get(key):
                problems.append(Problem(source, at, what, f"{key} must be a non-empty string", f'{key} = "..."'))
        if isinstance(m.get("name"), str) and not _NAME.match(m["name"]):
            problems.append(Problem(source, at, what, f"name {m['name']!r} must be lower-case words joined by '-'", 'name = "use-after-free"'))
        if isinstance(m.get("detector"), str) and m["detector"] and m["detector"] not in DETECTORS:
            problems.append(Problem(source, at, what, f"no detector {m['detector']!r}", f"use one of: {', '.join(DETECTORS)}."))
        edits = m.get("edit", [])
        if not isinstance(edits, list) or not edits or not all(
                isinstance(e, dict) and set(e) == {"file", "find", "replace"} and all(isinstance(v, str) for v in e.values()) for e in edits):
            problems.append(Problem(source, at, what, "needs [[mutant.edit]] tables of file, find and replace (strings)",
                                    '[[mutant.edit]]\nfile = "mydebug.c"\nfind = """..."""\nreplace = """..."""'))
            continue
        if any(x.name == m.get("name") for x in out):
            problems.append(Problem(source, at, what, f"a second mutant named {m.get('name')!r}", "give each mutant its own name"))
        out.append(Mutant(str(m.get("name", "")), str(m.get("bug", "")), str(m.get("detector", "")), str(m.get("finding", "")),
                          str(m.get("line", "")), tuple(Edit(e["file"], e["find"], e["replace"]) for e in edits)))
    if problems:
        raise LabError(problems)
    return out


def apply(mutant: Mutant, files: dict[str, bytes]) -> dict[str, bytes]:
    """The project's files with the mutant's edits made; ValueError when a `find` does not
    occur exactly once."""
    out = dict(files)
    for e in mutant.edits:
        text = out.get(e.file, b"").decode()
        if text.count(e.find) != 1:
            raise ValueError(f"mutant {mutant.name!r}: its edit of {e.file} finds {text.count(e.find)} places, not one")
        out[e.file] = text.replace(e.find, e.replace).encode()
    return out


def load_mutants(lab: Lab) -> list[Mutant]:
    """The lab's mutants ([] without a mutants.toml), each checked against the solution."""
    from .project import project_files

    path = lab.root / MUTANTS
    if not path.is_file():
        return []
    mutants = parse_mutants(path.read_text(encoding="utf-8"), str(path))
    solution = project_files(lab, True, None)
    problems = []
    for m in mutants:
        try:
            apply(m, solution)
        except ValueError as exc:
            problems.append(Problem(str(path), 1, f"mutant {m.name!r}", str(exc), "make `find` quote exactly one place of the solution"))
    if problems:
        raise LabError(problems)
    return mutants


def write_mutant(lab: Lab, mutant: Mutant, dest: Path) -> None:
    """The solution project with the mutant's edits, in dest."""
    from .project import project_files, write_project

    write_project(lab, dest, solution=True)
    solution = project_files(lab, True, None)
    for rel, data in apply(mutant, solution).items():
        if data != solution[rel]:
            (Path(dest) / rel).write_bytes(data)


def verdict(mutant: Mutant, outcome) -> tuple[str, str | None]:
    """(what happened, the defect or None) for a mutant's scored Outcome: caught with its
    planted line where its detector watched, every check passing where it did not."""
    run = outcome.run
    if run.build_failure is not None:
        return "does not build", f"mutant {mutant.name!r} does not compile: {run.verdict}"
    if mutant.detector not in run.detectors:
        failed = [c for c in outcome.score.checks if not c.status.ok]
        if failed:
            names = ", ".join(f"{c.number} '{c.name}'" for c in failed)
            return f"fails {names}", f"mutant {mutant.name!r} fails a functional check without {mutant.detector}: {names}"
        return f"passes every check (no {mutant.detector} here)", None
    titles = [t for t in run.findings if t.startswith(mutant.finding)]
    # the frames of the reports with that title only: another report on the same line proves nothing
    frames = [f for i, report in enumerate(run.crashes) if report.title.startswith(mutant.finding) and i < len(run.frames)
              for f in run.frames[i]]
    frames += [f for leak in run.leaks if leak.title.startswith(mutant.finding) for f in leak.frames]
    planted = next((f for f in frames if f.ours and mutant.line in f.source), None)
    if not titles:
        return "not caught", f"mutant {mutant.name!r} is not caught by {mutant.detector}: no finding {mutant.finding!r} (found: {list(run.findings)})"
    if planted is None:
        return f"caught: {titles[0]}", f"mutant {mutant.name!r}: {titles[0]}, but no decoded frame shows the planted line {mutant.line!r}"
    return f"caught: {titles[0]} at {planted.file}:{planted.line}", None
