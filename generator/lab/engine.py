"""Run lab projects in the VM through the runner and score them.

One entry point, run_projects(): the same path for `lab check` (one project,
visible checks), `lab selfcheck` (solution and skeleton, every check) and
`lab grade` (every submission, every check, --jobs VMs).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..runner.execute import RunOptions, RunRequest, run
from ..runner.model import TestRun
from ..untrusted_build import Untrusted
from .manifest import Lab
from .run import LabChecks, PlannedCheck, Score, lab_guest_files, lab_plan, locate_crash, score


@dataclass(frozen=True)
class Outcome:
    name: str  # the student (or "solution", "skeleton")
    release: str
    score: Score
    run: TestRun
    build_errors: tuple[str, ...] = ()  # the compiler's messages, relative to the project


def run_projects(lab: Lab, projects: list[tuple[str, Path]], pair, hidden: bool, jobs: int = 2, timeout: float = 60.0,
                 check_timeout: float | None = 10.0, snapshot: bool = True, accel: str = "auto",
                 keep_logs: Path | None = None, on_line: Callable[[int, str], None] | None = None,
                 on_done: Callable[[Outcome], None] | None = None, untrusted: Untrusted | None = None) -> list[Outcome]:
    """Build, run and score every (name, project) on `pair`, in the given order.
    A build failure is that project's result (0 points, the compiler's first error).
    `untrusted`: how to build projects we do not trust (a copy with the lab's Kbuild, sandboxed)."""
    # A lab may need more time than the command's defaults (lab.toml [lab] timeout, check_timeout).
    timeout = max(timeout, lab.timeout or 0.0)
    if lab.check_timeout is not None:
        check_timeout = max(check_timeout or 0.0, lab.check_timeout)
    checks: list[PlannedCheck] = lab_plan(lab, hidden)
    shared = lab_guest_files(lab, pair)  # e.g. staprun and its libraries: in the agent initramfs
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-lab-") as tmp:
        lab_checks = LabChecks(lab, hidden, Path(tmp) / "kos", untrusted)
        (Path(tmp) / "kos").mkdir()
        requests = [RunRequest(name, Path(p), lab_checks) for name, p in projects]
        options = RunOptions(timeout, check_timeout, accel, jobs, snapshot, keep_logs, shared)
        out = []
        for (name, project), (outcome, _) in zip(projects, run(requests, pair, options, on_line)):
            errors: tuple[str, ...] = ()
            where = ""
            if outcome.build_failure is not None:
                errors = outcome.build_failure.relative()
                outcome = replace(outcome, verdict=f"build failed: {errors[0] if errors else outcome.build_failure.message}")
            elif outcome.crashes:
                loc = locate_crash(outcome, Path(project))
                where = str(loc) if loc else ""
            result = Outcome(name, pair.release, score(lab, checks, outcome, where), outcome, errors)
            out.append(result)
            if on_done:
                on_done(result)
    return out
