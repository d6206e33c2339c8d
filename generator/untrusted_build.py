"""Build a module we do not trust: a clean copy of its sources, kbuild inside the sandbox.

The copy holds the project's regular files only (a symlink to /etc/shadow is not
followed: as root we could read it) and, for a lab, the lab's own Kbuild instead
of any Kbuild or Makefile of the submission's. make runs in sandbox.run(); what
it built comes back as a tar on the sandbox's result pipe, unpacked here with
the same care as a student's tarball. Without the sandbox (an instructor's
explicit --no-sandbox) the copy is built directly: still never with the
submission's own Kbuild when a lab's is given.

Edges only: stage(), build(), unpack(). A sandboxed build reads kbuild's probe answers
(kbuild_probes) and, from 6.11, a .module-common.o made once by a build of our own.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import kbuild, kbuild_probes, paths, sandbox
from .errors import UserError
from .kbuild import BUILD_INPUTS, BuildResult, build_inputs, parse_diagnostics, relocate
from .kbuild import build as direct_build

SRC = f"{sandbox.INPUTS}/src"  # the staged copy, read-only in the sandbox
PROBES = f"{sandbox.INPUTS}/probes"  # kbuild's compiler-probe answers, read-only
MAX_SOURCE_BYTES = 20 << 20  # a module's sources are KBs; more (here or in a tarball) is refused before anything is built


@dataclass(frozen=True)
class Untrusted:
    """How to build code we do not trust."""

    sandboxed: bool = True  # False only by the instructor's explicit --no-sandbox
    kbuild: str | None = None  # a lab's Kbuild text, used instead of the project's Kbuild/Makefile
    hide: tuple[Path, ...] = ()  # more directories the build must not see (the other submissions)
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)


def stage(project: Path, dest: Path, kbuild: str | None = None) -> None:
    """Copy the project's build inputs (regular files only) into dest, world-readable
    (the sandbox runs as nobody); with `kbuild`, no Kbuild/Makefile of its own but this Kbuild.
    Raises UserError (exit 2) when the sources are over MAX_SOURCE_BYTES."""
    project = Path(project)
    total = 0
    for rel in build_inputs(project):
        if kbuild is not None and rel.name in BUILD_INPUTS:
            continue
        try:  # O_NOFOLLOW: a symlink (also one swapped in meanwhile) is not read
            fd = os.open(project / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode):
                continue
            total += info.st_size
            if total > MAX_SOURCE_BYTES:
                raise UserError(f"{project}: error: refused: its sources are over {MAX_SOURCE_BYTES >> 20} MiB. "
                                "Fix: a module's sources are far smaller; leave generated data out.")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    if kbuild is not None:
        (dest / "Kbuild").write_text(kbuild)
    for dirpath, _dirs, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def unpack(data: bytes, dest: Path, wanted: Callable[[Path], bool]) -> None:
    """The `wanted` members of a tar a sandbox sent (regular files with plain relative
    names only) into dest; a damaged tar gives what it gives."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                name = Path(m.name)
                if not m.isfile() or name.is_absolute() or ".." in name.parts or not wanted(name):
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                if src is not None:
                    with open(target, "wb") as f:
                        shutil.copyfileobj(src, f)
    except (tarfile.TarError, EOFError):
        pass  # nothing usable came back: the caller sees no .ko


def _script(kdir: Path, args: Sequence[str], products: str = "-name '*.ko' -o -name modules.order") -> list[str]:
    make = " ".join(["make", "-C", shlex.quote(str(kdir)), f"M={sandbox.WORK}", *map(shlex.quote, args), "modules"])
    # make gets no fd 3: only this script writes the products
    return ["sh", "-c", f"cp -R {SRC}/. . && {make} 3>&-; rc=$?; "
            f"find . {products} | tar -cf - -T - >&3; exit $rc"]


# From 6.11 kbuild compiles scripts/module-common.c into M=/.module-common.o for every
# module directory: the same object for every submission (M= is always sandbox.WORK),
# ~0.35 s each. Made once per tree and arguments by a sandboxed build of our own module
# (never taken from a submission's build: it is linked into every later one).
MODULE_COMMON = (".module-common.o", "..module-common.o.cmd")


def _module_common(kdir: Path, args: Sequence[str], limits: sandbox.Limits, probes: list[str], probe_dir: Path | None) -> Path | None:
    """The directory holding this tree's shared .module-common.o (and its .cmd) for `args`,
    made now if need be; None for a kernel without it or when it could not be made."""
    if not (kbuild_probes.srctree(kdir) / "scripts" / "module-common.c").is_file():
        return None
    try:
        answers = kbuild_probes.probe_answers(kdir, args, sandbox.environment())
        kept = answers.with_suffix(".module-common")
        kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with kbuild_probes.locked(kept):  # builds run side by side: one makes it, the others wait and take it
            if all((kept / name).is_file() and paths.trusted(kept / name) for name in MODULE_COMMON):
                return kept
            made = _make_module_common(kdir, args, limits, probes, probe_dir, answers.parent)
            if made is None:
                return None
            shutil.rmtree(kept, ignore_errors=True)
            os.replace(made, kept)  # whole or not at all
            return kept
    except (OSError, paths.ForeignCache):
        return None


def _make_module_common(kdir: Path, args: Sequence[str], limits: sandbox.Limits, probes: list[str], probe_dir: Path | None,
                        into: Path) -> Path | None:
    """A sandboxed build of our own module: a new directory in `into` with its
    .module-common.o and .cmd, 0755/0644 whatever the umask; None when it failed."""
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-module-common-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        src.mkdir()
        out.mkdir()
        (src / "warmup.c").write_text(kbuild_probes.WARMUP_C)
        (src / "Kbuild").write_text("obj-m := warmup.o\n")
        for p in (src, *src.iterdir()):
            p.chmod(0o755 if p.is_dir() else 0o644)  # the sandbox's nobody reads them
        inputs = [sandbox.Input(src, SRC), *([sandbox.Input(probe_dir, PROBES)] if probe_dir is not None else [])]
        ran = sandbox.run(_script(kdir, [*probes, *args], " -o ".join(f"-name '{n}'" for n in MODULE_COMMON)),
                          [*inputs, *sandbox.shown([kdir, kdir / "source"])], limits)
        unpack(ran.result, out, lambda name: name.name in MODULE_COMMON and len(name.parts) == 1)
        if ran.returncode != 0 or not all((out / n).is_file() for n in MODULE_COMMON):
            return None
        made = Path(tempfile.mkdtemp(prefix="module-common.", dir=into))
        for name in MODULE_COMMON:
            shutil.copyfile(out / name, made / name)
            (made / name).chmod(0o644)
        made.chmod(0o755)
        return made


@contextmanager
def build(project: Path, kdir: Path, args: Sequence[str], how: Untrusted) -> Iterator[tuple[Path, BuildResult]]:
    """Yields (a directory with the built .ko files and modules.order, the result whose
    messages name the project's files). Raises sandbox.SandboxUnavailable (exit 4)."""
    project = Path(project).resolve()
    kdir = Path(os.path.realpath(kdir))
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-untrusted-") as tmp:
        staged, products = Path(tmp) / "src", Path(tmp) / "out"
        staged.mkdir()  # 0755 by stage(): the sandbox's nobody reads it through its bind mount
        products.mkdir()
        stage(project, staged, how.kbuild)
        if not how.sandboxed:
            result = direct_build(staged, kdir, extra_args=args)
            yield staged, relocate(result, staged, project)
            return
        # kbuild's compiler-probe answers, read-only (never recorded from in here)
        kbuild.warm_probes(kdir, args, sandbox.environment())
        probes = kbuild_probes.shown_args(kdir, Path(tmp) / "probes", PROBES, args, sandbox.environment())
        probe_dir = Path(tmp) / "probes" if probes else None
        common = _module_common(kdir, args, how.limits, probes, probe_dir)
        if common is not None:
            try:
                for name in MODULE_COMMON:
                    shutil.copyfile(common / name, staged / name)  # over any file of the submission's of that name
                    os.chmod(staged / name, 0o644)
            except OSError:  # pruned meanwhile: kbuild compiles its own
                for name in MODULE_COMMON:
                    (staged / name).unlink(missing_ok=True)
        inputs = [sandbox.Input(staged, SRC), *([sandbox.Input(probe_dir, PROBES)] if probe_dir is not None else [])]
        # the kernel's build directory, and the source tree an O= directory points at
        ran = sandbox.run(_script(kdir, [*probes, *args]), [*inputs, *sandbox.shown([kdir, kdir / "source"], how.hide)],
                          how.limits, how.hide)
        output = ran.output
        if ran.stopped:
            output += f"\ndbgscaffold: error: stopped the sandboxed build: {ran.stopped}\n"
        unpack(ran.result, products, lambda name: name.suffix == ".ko" or name.name == "modules.order")
        result = BuildResult(ran.returncode if ran.returncode is not None else -1, output, ran.seconds, parse_diagnostics(output))
        yield products, relocate(result, Path(sandbox.WORK), project)
