"""The guest of `dbgscaffold vm shell` for a module project: its modules built, in load order, with their parameters."""

from __future__ import annotations

from pathlib import Path

from ..vm.images import KernelPair
from ..vm.shell import ShellGuest, ShellModule
from .build import build_modules
from .checks import GUEST_LIB
from .project import ModuleProject


def module_guest(project: ModuleProject, pair: KernelPair, workdir: Path) -> ShellGuest:
    """Build the project's modules for `pair` (BuildFailed when they do not build)."""
    built = build_modules(project.path, pair.build_dir, pair.release, workdir, project.test.modules)
    modules = tuple(ShellModule(m.name, m.ko, params) for m, params in zip(built.modules, project.params(built, pair.release)))
    root = project.spec.module.root if project.spec is not None else ""
    return ShellGuest(modules, root, library=GUEST_LIB)
