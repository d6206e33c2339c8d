"""The kernel's own bar for a module project: checkpatch --strict, and a
W=1 build with sparse (C=2) against each kernel's headers, all with zero
findings.

Each build runs in a scratch copy of the sources, so the project directory
is left as it was and kernels never share objects.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .checkpatch import CheckpatchResult, run_checkpatch
from .kbuild import BuildResult, build
from .kernels import KernelHeaders

BUILD_INPUTS = ("Kbuild", "Makefile")


def source_files(project: Path) -> list[Path]:
    """The C sources and headers of a project (not kbuild's own *.mod.c)."""
    files = [*project.glob("*.c"), *project.glob("*.h"), *project.glob("user/*.c"), *project.glob("user/*.h")]
    return sorted(p for p in files if not p.name.endswith(".mod.c"))


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
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-build-") as tmp:
        project = project.resolve()
        copy = Path(tmp) / "src"
        copy.mkdir()
        for src in [*source_files(project), *(project / n for n in BUILD_INPUTS)]:
            if src.is_file():
                dst = copy / src.relative_to(project)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        result = build(copy, headers.build_dir, extra_warnings=strict, sparse=strict)
        # Paths in messages should name the user's files, not the scratch copy.
        result.output = result.output.replace(str(copy), str(project))
        result.diagnostics = [
            type(d)(d.severity, d.message, d.file.replace(str(copy), str(project)), d.line, d.column, d.tool)
            for d in result.diagnostics
        ]
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
