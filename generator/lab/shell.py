"""The guest of `dbgscaffold vm shell` for a lab project: the lab's module, its student files and tests/ in /root."""

from __future__ import annotations

from pathlib import Path

from ..runner.checks import GUEST_LIB
from ..vm.images import KernelPair
from ..vm.initramfs import FileSpec
from ..vm.shell import HOME, ShellGuest, ShellModule
from .manifest import CHECK_LIB, Lab
from .run import build_lab_module, series_of


def lab_guest(lab: Lab, project: Path, pair: KernelPair, workdir: Path) -> ShellGuest:
    """Build the student's module (BuildFailed when it does not build); their
    student_files and tests/ go to HOME, where the lab's checks look for them."""
    built = build_lab_module(lab, project, pair, workdir)
    files = [FileSpec.from_path(f"{HOME}/{name}", project / name, 0o755) for name in lab.student_files if (project / name).is_file()]
    tests = project / "tests"
    if tests.is_dir():
        files += [FileSpec.from_path(f"{HOME}/tests/{p.name}", p) for p in sorted(tests.iterdir()) if p.is_file()]
    variables = [("SERIES", series_of(pair.version))]
    if lab.student_files:
        variables.append(("PROJECT", HOME))
    if (tests / CHECK_LIB).is_file():
        variables.append(("DBGS_CHECK_LIB", f"{HOME}/tests/{CHECK_LIB}"))
    module = ShellModule(lab.module, built.modules[0].ko)
    return ShellGuest((module,), lab.debugfs_root, tuple(files), tuple(variables), GUEST_LIB)
