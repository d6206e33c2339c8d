"""`lab selfcheck`: a lab proves itself on one kernel.

The solution must pass every check (visible and hidden); the skeleton must
compile, score less than full marks on every TODO task and fail every check
of its own task: a check that passes on the skeleton cannot fail, a defect.
Pure: defects(). Edge: selfcheck_lab() (writes both projects, runs the VM).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .manifest import Lab


@dataclass(frozen=True)
class SelfcheckResult:
    solution: str  # its verdict and points
    skeleton: str
    defects: tuple[str, ...]


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


def selfcheck_lab(lab: Lab, pair, timeout: float = 60.0, check_timeout: float = 10.0, jobs: int = 2) -> SelfcheckResult:
    from .engine import run_projects
    from .project import write_project

    with tempfile.TemporaryDirectory(prefix=f"dbgscaffold-selfcheck-{lab.id}-") as tmp:
        sol, skel = Path(tmp) / "solution", Path(tmp) / "skeleton"
        write_project(lab, sol, solution=True)
        write_project(lab, skel, solution=False)
        solution, skeleton = run_projects(lab, [("solution", sol), ("skeleton", skel)], pair, hidden=True, jobs=jobs,
                                          timeout=timeout, check_timeout=check_timeout)
    s1 = f"{solution.score.total:g}/{solution.score.max_points:g} {solution.score.verdict}"
    s2 = f"{skeleton.score.total:g}/{skeleton.score.max_points:g} {skeleton.score.verdict}"
    return SelfcheckResult(s1, s2, tuple(defects(lab, solution, skeleton)))
