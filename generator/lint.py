"""The kernel's own bar for a module project: checkpatch --strict, and a
W=1 build with sparse (C=2) against each kernel's headers, all with zero
findings.

Each build runs in a scratch copy of the sources, so the project directory
is left as it was and kernels never share objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .checkpatch import CheckpatchResult, run_checkpatch
from .kbuild import BuildResult, scratch_build, source_files
from .kernels import KernelHeaders


@dataclass
class LintReport:
    checkpatch: CheckpatchResult | None = None
    builds: dict[str, BuildResult] = field(default_factory=dict)  # by kernel release

    @property
    def findings(self) -> int:
        count = len(self.checkpatch.findings) if self.checkpatch else 0
        return count + sum(len(b.diagnostics) for b in self.builds.values())

    @property
    def build_failed(self) -> bool:
        return any(not b.ok for b in self.builds.values())


def build_copy(project: Path, headers: KernelHeaders, strict: bool = True) -> BuildResult:
    """Build a scratch copy of the project against `headers`."""
    with scratch_build(project, headers.build_dir, extra_warnings=strict, sparse=strict) as (_, result):
        return result


def lint(project: Path, kernels: list[KernelHeaders], checkpatch: bool = True) -> LintReport:
    project = project.resolve()
    report = LintReport()
    if checkpatch:
        files = [p.relative_to(project) for p in source_files(project)]
        report.checkpatch = run_checkpatch(files, cwd=project)
    for headers in kernels:
        report.builds[headers.release] = build_copy(project, headers)
    return report
