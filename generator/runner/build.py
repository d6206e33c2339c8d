"""Build a project's modules with kbuild for one kernel: every .ko, in the order they must load.

build_modules() runs kbuild in the project's cached build tree (kbuild.incremental_build:
the project directory stays as it was, unchanged sources make no make at all) and
returns each module stripped (for the guest: the UART is slow) and unstripped (its
DWARF, for decoding a crash). The load order follows kbuild's modules.order, moved
so that a module comes after every module of the build it depends on (modinfo
`depends`). A failure raises BuildFailed, carrying the one BuildFailure shape.

Pure: modinfo_fields(), load_order(), failure_of(). Edges: build_modules(), guest_build_args().
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import elf
from ..errors import EXIT_ENVIRONMENT, EXIT_USAGE, UserError
from ..kbuild import BuildResult, incremental_build, kernel_name_clashes, missing_tool, module_makefile, source_files
from ..untrusted_build import Untrusted
from ..untrusted_build import build as untrusted_build
from .model import BuildFailure

MAX_MODULE_BYTES = 16 << 20  # a stripped .ko bigger than this is not a module we send to the guest


class BuildFailed(UserError):
    """A module did not build; `failure` says why (exit 3, or 2 for no module at all)."""

    def __init__(self, failure: BuildFailure):
        self.failure = failure
        self.exit_code = failure.exit_code
        super().__init__(str(failure))


@dataclass(frozen=True)
class BuiltModule:
    name: str  # the module's name (modinfo name=, else the .ko's stem)
    ko: Path  # stripped, in the caller's scratch directory
    debug_ko: Path  # unstripped, beside it under debug/
    depends: tuple[str, ...]  # modinfo depends=


@dataclass(frozen=True)
class Built:
    modules: tuple[BuiltModule, ...]  # in load order
    seconds: float
    result: BuildResult

    def module(self, name: str) -> BuiltModule | None:
        return next((m for m in self.modules if m.name == name), None)


# ---------------------------------------------------------------- pure


def modinfo_fields(section: bytes) -> dict[str, list[str]]:
    """The .modinfo section's `key=value` strings, by key (a key may repeat: alias=)."""
    out: dict[str, list[str]] = {}
    for item in section.split(b"\0"):
        key, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep:
            out.setdefault(key, []).append(value)
    return out


def load_order(modules: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Names in the given order, except that a module follows every module of the
    list it depends on. Raises ValueError on a dependency cycle."""
    names = [n for n, _ in modules]
    deps = {n: [d for d in ds if d in names and d != n] for n, ds in modules}
    out: list[str] = []
    visiting: set[str] = set()

    def visit(n: str) -> None:
        if n in out:
            return
        if n in visiting:
            raise ValueError(f"modules depend on each other in a cycle through {n}")
        visiting.add(n)
        for d in deps[n]:
            visit(d)
        visiting.discard(n)
        out.append(n)

    for n in names:
        visit(n)
    return out


def failure_of(release: str, result: BuildResult, project: Path) -> BuildFailure:
    """The BuildFailure of a failed kbuild run: its errors (else every message, else
    the tail of make's output) and the notes of kernel_name_clashes(); a program kbuild
    ran that is not installed (the compiler, bc, pahole...) is exit 4 with the package."""
    tool = missing_tool(result.output)
    if tool is not None:
        message = (f"error: kbuild runs '{tool[0]}' for {release}, and it is not installed. "
                   f"Fix: apt-get install {tool[1]}.")
        return BuildFailure(release, Path(project), message, lines=(message,), exit_code=EXIT_ENVIRONMENT)
    compiler = [d for d in result.errors if d.tool in ("gcc", "sparse")]
    shown = compiler or result.errors or result.diagnostics
    lines = [str(d) for d in shown] or result.output.strip().splitlines()[-20:] or ["make failed without a message"]
    return BuildFailure(release, Path(project), lines[0], tuple(result.diagnostics), tuple(lines),
                        tuple(kernel_name_clashes(result.output, project)))


def usage_failure(release: str, project: Path, message: str) -> BuildFailure:
    """A project that is no buildable module (exit 2): said as the build's failure."""
    return BuildFailure(release, Path(project), message.splitlines()[0], lines=tuple(message.splitlines()), exit_code=EXIT_USAGE)


# ---------------------------------------------------------------- kbuild (edge)


def guest_build_args(kdir: Path) -> tuple[str, ...]:
    """make arguments for modules built to run in the test VM: DWARF (for decoding a crash to
    a line) when the kernel's own config gives none (a tinyconfig-based kernel builds them
    without -g), and no module BTF: nothing in the guest reads it (busybox, no BPF tools),
    while pahole's BTF pass, objcopy and resolve_btfids cost ~0.15 s of every build on a
    kernel whose build tree has a vmlinux (Debian's 6.12). Only that pass reads PAHOLE_FLAGS,
    which 6.1's Makefile otherwise computes (scripts/pahole-flags.sh, pahole --version) six
    times a build. `dbgscaffold build` and the project's own make keep all of it as the
    kernel's config says."""
    try:
        config = (Path(kdir) / ".config").read_text(errors="replace")
    except OSError:
        return ()
    return (*(() if "\nCONFIG_DEBUG_INFO=y" in config else ("KCFLAGS=-g",)),
            *(("CONFIG_DEBUG_INFO_BTF_MODULES=", "PAHOLE_FLAGS=") if "\nCONFIG_DEBUG_INFO_BTF_MODULES=y" in config else ()))


def _modules_order(tree: Path) -> list[str]:
    """Module file stems as kbuild lists them (6.1 writes NAME.ko, 6.2+ NAME.o)."""
    try:
        lines = (tree / "modules.order").read_text().split()
    except OSError:
        return []
    return [Path(x).stem for x in lines]


def _strip(src: Path, dst: Path) -> str:
    """Copy src to dst without its debug info; '' or strip's complaint (then it is no object file)."""
    if not shutil.which("strip"):
        shutil.copy2(src, dst)  # only bigger: the unstripped module goes to the guest
        return ""
    proc = subprocess.run(["strip", "--strip-debug", "-o", str(dst), str(src)], capture_output=True, text=True, timeout=60, check=False)
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or [f"strip failed ({proc.returncode})"])[-1]


def build_modules(project: Path, kdir: Path, release: str, out_dir: Path, wanted: Sequence[str] = (),
                  untrusted: Untrusted | None = None) -> Built:
    """kbuild `project` against `kdir`; every module it makes (or only `wanted`, in
    that order) stripped into out_dir and unstripped into out_dir/debug.
    `untrusted`: build a clean copy in the sandbox (untrusted_build), not in the cache.
    Raises BuildFailed: exit 3 with the compiler's messages naming the user's files,
    exit 2 when the directory is no module project, `wanted` names a module the
    build does not make, or a stripped module is over MAX_MODULE_BYTES."""
    project = Path(project).resolve()
    try:
        module_makefile(project)
        if not source_files(project):
            raise UserError(f"{project}: error: no C sources (*.c) here. Fix: pass the module's directory.")
    except UserError as exc:
        raise BuildFailed(usage_failure(release, project, str(exc))) from None
    out_dir = Path(out_dir)
    (out_dir / "debug").mkdir(parents=True, exist_ok=True)
    building = (incremental_build(project, kdir, guest_build_args(kdir)) if untrusted is None
                else untrusted_build(project, kdir, guest_build_args(kdir), untrusted))
    with building as (tree, result):
        kos = {p.stem: p for p in sorted(tree.rglob("*.ko"))}
        if not result.ok or not kos:
            raise BuildFailed(failure_of(release, result, project))
        listed = [s for s in _modules_order(tree) if s in kos]
        stems = listed + [s for s in kos if s not in listed]
        found: dict[str, BuiltModule] = {}
        for stem in stems:
            debug = out_dir / "debug" / f"{stem}.ko"
            shutil.copy2(kos[stem], debug)
            info = modinfo_fields(_modinfo(debug))
            name = (info.get("name") or [stem.replace("-", "_")])[0]
            depends = tuple(d for d in ",".join(info.get("depends", [])).split(",") if d)
            stripped = out_dir / f"{stem}.ko"
            complaint = _strip(debug, stripped)
            if complaint:
                raise BuildFailed(usage_failure(release, project, (
                    f"{project}: error: the build made {stem}.ko, which is no kernel module ({complaint}). "
                    "Fix: let kbuild make the .ko (obj-m in Kbuild), not a rule of your own.")))
            if stripped.stat().st_size > MAX_MODULE_BYTES:
                raise BuildFailed(usage_failure(release, project, (
                    f"{project}: error: {stem}.ko is {stripped.stat().st_size >> 20} MiB stripped; refused (the limit is "
                    f"{MAX_MODULE_BYTES >> 20} MiB). Fix: do not embed large data in the module.")))
            found[name] = BuiltModule(name, stripped, debug, depends)
    if wanted:
        missing = [w for w in wanted if w not in found]
        if missing:
            raise BuildFailed(usage_failure(release, project, (
                f"{project}: error: [test] modules names {', '.join(map(repr, missing))}, but the build made "
                f"{', '.join(f + '.ko' for f in found)}. Fix: list the modules the Kbuild file builds.")))
        order = list(wanted)
    else:
        try:
            order = load_order([(m.name, m.depends) for m in found.values()])
        except ValueError as exc:
            raise BuildFailed(usage_failure(release, project, f"{project}: error: {exc}. Fix: break the cycle.")) from None
    return Built(tuple(found[n] for n in order), result.seconds, result)


def _modinfo(ko: Path) -> bytes:
    with open(ko, "rb") as f:
        def read(offset: int, size: int) -> bytes:
            f.seek(offset)
            return f.read(size)
        try:
            return elf.section(read, ".modinfo") or b""
        except ValueError:
            return b""

