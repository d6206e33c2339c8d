"""`lab selfcheck`: a lab proves itself on one kernel.

The solution must pass every check (visible and hidden); the skeleton must
compile, score less than full marks on every TODO task and fail every check
of its own task: a check that passes on the skeleton cannot fail, a defect.
With --thorough, also the solution with one task's code stripped, for each
task: every check of that task must fail there (the stale-variable bug: a
check passing because of another task's code). With --mutants, the lab's
planted bugs (mutants.py): each caught, on its planted line, where its detector
watches, and passing every check where none does.
Pure: defects(). Edge: selfcheck_lab() (writes both projects, runs the VM).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .manifest import Lab
from .mutants import Planted


@dataclass(frozen=True)
class SelfcheckResult:
    solution: str  # its verdict and points
    skeleton: str
    defects: tuple[str, ...]
    planted: tuple[Planted, ...] = ()  # what became of each planted bug (--mutants)


def defects(lab: Lab, solution, skeleton) -> list[str]:
    """What is wrong with the lab, given the scored solution and skeleton Outcomes."""
    out = []
    for c in solution.score.checks:
        if c.status not in ("pass", "skip"):
            why = next((d for d in c.diagnostics if not d.startswith(("uptime:", "taint:"))), "")
            out.append(f"the solution fails check {c.number} '{c.name}' ({c.status}{': ' + why if why else ''})")
    if skeleton.build_errors or skeleton.score.verdict.startswith("build failed"):
        out.append(f"the skeleton does not compile: {skeleton.score.verdict}")
        return out
    for t in skeleton.score.tasks:
        if t.number and t.total and t.points >= t.max_points:
            out.append(f"task {t.number} gets full marks on the skeleton")
    for c in skeleton.score.checks:
        if c.task and c.status in ("pass", "skip"):
            label = f"{'hidden' if c.hidden else 'visible'} check {c.file or c.name}"
            out.append(f"{label} passes on the skeleton: it cannot fail for task {c.task}")
    return out


def stripped_task_defects(task: int, stripped) -> list[str]:
    """The solution with only task `task` stripped: every check of that task must fail."""
    if stripped.build_errors or stripped.score.verdict.startswith("build failed"):
        return [f"the solution without task {task}'s code does not compile: {stripped.score.verdict}"]
    return [f"{'hidden' if c.hidden else 'visible'} check {c.file or c.name} passes without task {task}'s code: it cannot fail"
            for c in stripped.score.checks if c.task == task and c.status in ("pass", "skip")]


def selfcheck_lab(lab: Lab, pair, timeout: float = 60.0, check_timeout: float = 10.0, jobs: int = 2,
                  thorough: bool = False, mutants: bool = False) -> SelfcheckResult:
    """Run the solution and the skeleton (with `thorough`, also the solution with one
    task's regions stripped, for each task; with `mutants`, each planted bug) in one
    batch; judge them."""
    from .engine import run_projects
    from .mutants import load_mutants, verdict, write_mutant
    from .project import write_project

    planted = load_mutants(lab) if mutants else []

    with tempfile.TemporaryDirectory(prefix=f"dbgscaffold-selfcheck-{lab.id}-") as tmp:
        projects = [("solution", Path(tmp) / "solution"), ("skeleton", Path(tmp) / "skeleton")]
        write_project(lab, projects[0][1], solution=True)
        write_project(lab, projects[1][1], solution=False)
        tasks = [t.number for t in lab.tasks] if thorough else []
        for n in tasks:
            projects.append((f"without task {n}", Path(tmp) / f"without-{n}"))
            write_project(lab, projects[-1][1], solution=False, only=frozenset({n}))
        for m in planted:
            projects.append((f"mutant {m.name}", Path(tmp) / f"mutant-{m.name}"))
            write_mutant(lab, m, projects[-1][1])
        solution, skeleton, *others = run_projects(lab, projects, pair, hidden=True, jobs=jobs, timeout=timeout,
                                                   check_timeout=check_timeout)
    found = defects(lab, solution, skeleton)
    for n, stripped in zip(tasks, others):
        found += stripped_task_defects(n, stripped)
    happened = []
    for bug, outcome in zip(planted, others[len(tasks):]):
        what, defect = verdict(bug, outcome)
        happened.append(Planted(bug.name, what))
        found += [defect] if defect else []
    s1 = f"{solution.score.total:g}/{solution.score.max_points:g} {solution.score.verdict}"
    s2 = f"{skeleton.score.total:g}/{skeleton.score.max_points:g} {skeleton.score.verdict}"
    return SelfcheckResult(s1, s2, tuple(found), tuple(happened))
