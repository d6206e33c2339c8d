"""Run lab projects in the VM through runner.run_prepared and score them.

One entry point, run_projects(): the same path for `lab check` (one project,
visible checks), `lab selfcheck` (solution and skeleton, every check) and
`lab grade` (every submission, every check, --jobs VMs).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .manifest import Lab
from .run import LabBuild, PlannedCheck, Score, first_crash, lab_guest_files, lab_plan, locate_crash, prepare, score


@dataclass(frozen=True)
class Outcome:
    name: str  # the student (or "solution", "skeleton")
    release: str
    score: Score
    run: object  # runner.TestRun
    build_errors: tuple[str, ...] = ()  # the compiler's messages, relative to the project


def _build_verdict(exc: UserError, project: Path) -> tuple[str, tuple[str, ...]]:
    from ..vm.runner import BuildFailed

    prefix = str(Path(project).resolve()) + "/"
    if isinstance(exc, BuildFailed) and (exc.result.errors or exc.result.diagnostics):
        compiler = [d for d in exc.result.errors if d.tool in ("gcc", "sparse")]
        shown = [str(d).replace(prefix, "") for d in (compiler or exc.result.errors or exc.result.diagnostics)]
        return f"build failed: {shown[0]}", tuple(shown)
    lines = str(exc).replace(prefix, "").strip().splitlines()
    return f"build failed: {lines[0] if lines else exc}", tuple(lines)


def run_projects(lab: Lab, projects: list[tuple[str, Path]], pair, hidden: bool, jobs: int = 2, timeout: float = 60.0,
                 check_timeout: float | None = 10.0, snapshot: bool = True, accel: str = "auto",
                 keep_logs: Path | None = None, on_line: Callable[[int, str], None] | None = None,
                 on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Build, run and score every (name, project) on `pair`, in the given order.
    A build failure is that project's result (0 points, the compiler's first error)."""
    from ..vm.runner import WorkItem, _build_failed, run_prepared

    # A lab may need more time than the command's defaults (lab.toml [lab] timeout, check_timeout).
    timeout = max(timeout, lab.timeout or 0.0)
    if lab.check_timeout is not None:
        check_timeout = max(check_timeout or 0.0, lab.check_timeout)
    checks: list[PlannedCheck] = lab_plan(lab, hidden)
    shared = lab_guest_files(lab, pair)  # e.g. staprun and its libraries: in the agent initramfs
    builds: dict[int, LabBuild] = {}
    failed: dict[int, UserError] = {}
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-lab-") as tmp:
        cache = Path(tmp) / "kos"

        def make(i: int, project: Path):
            def _prepare(workdir: Path):
                try:
                    return prepare(lab, project, pair, workdir, hidden, check_timeout, cache, builds, i)
                except UserError as exc:
                    failed[i] = exc
                    raise
            return _prepare

        items = [WorkItem(lab.module or name, make(i, p)) for i, (name, p) in enumerate(projects)]
        try:
            runs = run_prepared(items, pair, timeout, accel, keep_logs, jobs, snapshot, on_line, guest_files=shared)
        except UserError as exc:
            if len(items) != 1 or 0 not in failed:
                raise
            runs = [_build_failed(lab.module, pair.release, exc)]
        out = []
        for i, ((name, project), run) in enumerate(zip(projects, runs)):
            errors: tuple[str, ...] = ()
            where = ""
            if i in failed:
                verdict, errors = _build_verdict(failed[i], project)
                run = _replace_verdict(run, verdict)
            elif run.crashes and i in builds:
                loc = locate_crash(first_crash(run), builds[i])
                where = str(loc) if loc else ""
            outcome = Outcome(name, pair.release, score(lab, checks, run, where), run, errors)
            out.append(outcome)
            if on_done:
                on_done(outcome)
    return out


def _replace_verdict(run, verdict: str):
    from dataclasses import replace

    return replace(run, verdict=verdict)
