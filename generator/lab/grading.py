"""`lab grade` on one machine: collect and unpack submissions, run them all in
as few boots as possible (engine.run_projects, --jobs VMs), build the report.
Edge only; the report format and the pure parts are in grade.py.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from ..sandbox import require as require_sandbox
from ..untrusted_build import Untrusted
from .manifest import Lab


def grade_folder(lab: Lab, folder: Path, kernel: str | None, jobs: int, timeout: float, check_timeout: float,
                 shard_spec: str | None = None, progress: Callable[[str], None] | None = None,
                 sandboxed: bool = True) -> tuple[dict, float, int]:
    """Grade every submission in `folder` (or one shard of them); returns (report, seconds, count).
    Each is built from a copy with the lab's own Kbuild, in the sandbox unless `sandboxed` is
    False (the instructor's --no-sandbox); without a working sandbox, SandboxUnavailable (exit 4)."""
    from ..runner.execute import failure_of_error
    from ..runner.kernels import resolve
    from ..runner.model import TestRun
    from .engine import Outcome, run_projects
    from .grade import extract, find_submissions, project_root, report_doc, shard, student_doc
    from .project import write_project
    from .run import lab_plan, score

    subs = shard(find_submissions(folder), shard_spec)
    if sandboxed:
        require_sandbox("lab grade")
    pair = resolve(kernel)[0][0]
    if progress:
        progress(f"grading {len(subs)} submissions of lab {lab.id} on {pair.release} with {jobs} VMs")
    t0 = time.monotonic()
    docs = []
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-grade-") as tmp:
        projects, refused = [], []
        for i, sub in enumerate(subs):
            if sub.path.is_dir():
                projects.append((sub.student, project_root(sub.path)))
                continue
            try:
                projects.append((sub.student, extract(sub.path, Path(tmp) / f"{i:04d}")))
            except UserError as exc:
                refused.append((sub.student, sub.path, exc))
        for student, path, problem in refused:  # an unreadable or unsafe tarball: 0 points, said why
            run = TestRun.of_build_failure(lab.module, failure_of_error(pair.release, path, problem))
            o = Outcome(student, pair.release, score(lab, lab_plan(lab, True), run), run, (str(problem),))
            docs.append(student_doc(o))
        if projects:
            done: set[int] = set()

            def on_line(i: int, line: str) -> None:  # run.sh's last line: that submission's run is over
                over = line.startswith("# taint: ") and "->" not in line or line.startswith("Bail out!")
                if progress and over and i not in done:
                    done.add(i)
                    progress(f"  {len(done)}/{len(projects)} run: {projects[i][0]}")

            # no submission sees the others' work or the lab's hidden checks (also where installed under /usr);
            # the lab's solution seeds each build with its NAME.mod.o (untrusted_build: reused where it matches)
            seed = Path(tmp) / "seed"
            write_project(lab, seed, solution=True)
            untrusted = Untrusted(sandboxed, hide=(Path(folder).resolve(), lab.root), seed=seed if sandboxed else None)
            for o in run_projects(lab, projects, pair, hidden=True, jobs=jobs, timeout=timeout, check_timeout=check_timeout,
                                  on_line=on_line, untrusted=untrusted):
                docs.append(student_doc(o))
    return report_doc(lab, docs), time.monotonic() - t0, len(subs)
