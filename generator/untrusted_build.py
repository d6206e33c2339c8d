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

import functools
import hashlib
import io
import os
import shlex
import shutil
import stat
import tarfile
import tempfile
import time
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
    # A project of ours building the same module (a lab's solution, for `lab grade`): its
    # NAME.mod.o, made once by a sandboxed build of it, goes into every staged copy, and
    # kbuild keeps it wherever the submission's NAME.mod.c comes out the same.
    seed: Path | None = None


def seed_digest(seed: Path, kbuild: str | None) -> str:
    """The digest of `seed` as staged (its files and this Kbuild): what its cached build is
    found by. Computed once a process per version of its files (a walk and a stat each):
    staging reads every file, and a grade builds a submission's Untrusted anew."""
    files = tuple((rel.as_posix(), paths.file_identity(seed / rel)) for rel in build_inputs(seed))
    return _seed_digest(Path(seed).resolve(), kbuild, files)


@functools.lru_cache(maxsize=8)
def _seed_digest(seed: Path, kbuild: str | None, files: tuple[tuple[str, str], ...]) -> str:
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-seed-") as tmp:
        stage(seed, Path(tmp), kbuild)
        root = Path(tmp)
        return hashlib.sha256(b"".join(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes()
                                       for p in sorted(root.rglob("*")) if p.is_file())).hexdigest()[:16]


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
    # cp gives every file the time of the copy: a seeded NAME.mod.o is made newer than its
    # NAME.mod.c again, as kbuild left them
    return ["sh", "-c", f"cp -R {SRC}/. . && {{ touch -c ./*.mod.o 2>/dev/null; {make} 3>&-; }}; rc=$?; "
            f"find . {products} | tar -cf - -T - >&3; exit $rc"]


# From 6.11 kbuild compiles scripts/module-common.c into M=/.module-common.o for every
# module directory: the same object for every submission (M= is always sandbox.WORK),
# ~0.35 s each. Made once per tree and arguments by a sandboxed build of our own module
# (never taken from a submission's build: it is linked into every later one).
MODULE_COMMON = (".module-common.o", "..module-common.o.cmd")


def _module_common(kdir: Path, args: Sequence[str], limits: sandbox.Limits, probes: list[str], probe_dir: Path | None,
                   key: Path | None) -> Path | None:
    """The directory holding this tree's shared .module-common.o (and its .cmd) for `args`
    (kept beside `key`, the probe answers' file name), made now if need be; None for a
    kernel without it or when it could not be made."""
    if key is None or not (kbuild_probes.srctree(kdir) / "scripts" / "module-common.c").is_file():
        return None
    try:
        kept = key.with_suffix(".module-common")
        kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with kbuild_probes.locked(kept):  # builds run side by side: one makes it, the others wait and take it
            if all((kept / name).is_file() and paths.trusted(kept / name) for name in MODULE_COMMON):
                return kept
            made = _make_module_common(kdir, args, limits, probes, probe_dir, key.parent)
            if made is None:
                return None
            shutil.rmtree(kept, ignore_errors=True)
            os.replace(made, kept)  # whole or not at all
            return kept
    except OSError:
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


# modpost writes NAME.mod.c only when its text changes, and kbuild recompiles NAME.mod.o
# (~0.25 s, a third of a submission's build) only when the .mod.c is newer or the command
# differs: a .mod.c, .mod.o and .cmd of a build of the same module at the same M= are kept
# as they are. The seed is made by a build of our own project (never a submission's: an
# object of one would be linked into the others').
def _is_seed(name: str) -> bool:
    return name.endswith((".mod.c", ".mod.o")) or name.startswith(".") and name.endswith(".mod.o.cmd")


def _mod_seed(kdir: Path, args: Sequence[str], how: Untrusted, probes: list[str], probe_dir: Path | None, common: Path | None,
              key: Path | None) -> Path | None:
    """The directory with the seed's NAME.mod.c, NAME.mod.o and .NAME.mod.o.cmd for this
    tree and `args` (kept beside `key`, the probe answers' file name), made now if need be;
    None when there is no seed or it could not be made."""
    if how.seed is None or key is None:
        return None
    try:
        kept = key.with_suffix(f".modseed-{seed_digest(how.seed, how.kbuild)}")
        with kbuild_probes.locked(kept):
            if kept.is_dir() and any(kept.glob("*.mod.o")) and all(paths.trusted(f) for f in kept.iterdir()):
                return kept
            with tempfile.TemporaryDirectory(prefix="dbgscaffold-seed-") as tmp:
                staged = Path(tmp) / "src"
                staged.mkdir()
                stage(how.seed, staged, how.kbuild)
                _copy_common(common, staged)
                inputs = [sandbox.Input(staged, SRC), *([sandbox.Input(probe_dir, PROBES)] if probe_dir is not None else [])]
                ran = sandbox.run(_script(kdir, [*probes, *args], "-name '*.mod.c' -o -name '*.mod.o' -o -name '.*.mod.o.cmd'"),
                                  [*inputs, *sandbox.shown([kdir, kdir / "source"])], how.limits)
                out = Path(tmp) / "out"
                unpack(ran.result, out, lambda name: len(name.parts) == 1 and _is_seed(name.name))
                if ran.returncode != 0 or not any(out.glob("*.mod.o")):
                    return None
                made = Path(tempfile.mkdtemp(prefix="modseed.", dir=key.parent))
                for f in out.iterdir():
                    shutil.copyfile(f, made / f.name)
                    (made / f.name).chmod(0o644)
                made.chmod(0o755)
                shutil.rmtree(kept, ignore_errors=True)
                os.replace(made, kept)  # whole or not at all
                return kept
    except (OSError, UserError):
        return None


def _copy_common(common: Path | None, staged: Path) -> None:
    """The shared .module-common.o into a staged copy (over any file of that name there)."""
    if common is None:
        return
    try:
        for name in MODULE_COMMON:
            shutil.copyfile(common / name, staged / name)
            os.chmod(staged / name, 0o644)
    except OSError:  # pruned meanwhile: kbuild compiles its own
        for name in MODULE_COMMON:
            (staged / name).unlink(missing_ok=True)


def _copy_seed(seed: Path | None, staged: Path) -> None:
    """The seed's files into a staged copy, the .mod.c older than the .mod.o (as kbuild left them)."""
    if seed is None:
        return
    now = time.time()
    try:
        for f in seed.iterdir():
            shutil.copyfile(f, staged / f.name)
            os.chmod(staged / f.name, 0o644)
            age = 2 if f.name.endswith(".mod.c") else 1
            os.utime(staged / f.name, (now - age, now - age))
    except OSError:  # pruned meanwhile: kbuild compiles its own
        for f in staged.iterdir():
            if _is_seed(f.name):
                f.unlink(missing_ok=True)


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
        # kbuild's compiler-probe answers, read-only (never recorded from in here); their file
        # name, found once (it stats the whole toolchain), also keys the shared objects below
        env = sandbox.environment()
        try:
            key: Path | None = kbuild_probes.probe_answers(kdir, args, env)
        except paths.ForeignCache:
            key = None
        answers = key if key is not None and kbuild_probes.served(kdir) else None
        kbuild.warm_probes(kdir, args, env, answers)
        probes = kbuild_probes.shown_args(answers, Path(tmp) / "probes", PROBES)
        probe_dir = Path(tmp) / "probes" if probes else None
        common = _module_common(kdir, args, how.limits, probes, probe_dir, key)
        _copy_common(common, staged)
        _copy_seed(_mod_seed(kdir, args, how, probes, probe_dir, common, key), staged)
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
