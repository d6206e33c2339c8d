"""The guest of `dbgscaffold vm shell` for a module project: its modules built, in load order, with their parameters."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..vm.images import KernelPair
from ..vm.shell import ShellGuest, ShellModule
from .build import BuiltModule, build_modules
from .checks import GUEST_LIB
from .project import ModuleProject


def module_guest(project: ModuleProject, pair: KernelPair, workdir: Path) -> ShellGuest:
    """Build the project's modules for `pair` (BuildFailed when they do not build)."""
    built = build_modules(project.path, pair.build_dir, pair.release, workdir, project.test.modules)
    modules = tuple(ShellModule(m.name, m.ko, params) for m, params in zip(built.modules, project.params(built, pair.release)))
    root = project.spec.module.root if project.spec is not None else ""
    return ShellGuest(modules, root, library=GUEST_LIB)


def with_gdb(guest: ShellGuest, pair: KernelPair, port: int) -> ShellGuest:
    """`guest` printing, once its modules are loaded, the gdb command that attaches to the
    stub on `port` with each module's symbols where it lies (its unstripped .ko, beside
    the stripped one under debug/ as build_modules leaves it, is kept in the cache)."""
    from .vm_run import gdb_prefix, keep_for_gdb, kernel_symbols

    kept = keep_for_gdb([BuiltModule(m.name, m.ko, m.ko.parent / "debug" / m.ko.name, ()) for m in guest.modules])
    return replace(guest, modules=tuple(replace(m, debug_ko=kept[m.name]) for m in guest.modules),
                   gdb=gdb_prefix(port, kernel_symbols(pair)))
