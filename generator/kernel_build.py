"""Build a small kernel the test VM boots: tinyconfig + the VM's profile + more profiles, into the cache.

    built = build_kernel(source_for("6.1"), profiles=("debug",))
    dbgscaffold test DIR --kernel <built.tree>

The steps: `make O=... tinyconfig`; the kernel's merge_config.sh with
kernel_configs/vm.config and the profiles; `make olddefconfig`; then every
option of those profiles is checked on the result and, where one did not take
(olddefconfig drops a line whose dependencies are off, e.g. KASAN without SLUB),
check-config's verified fix from the Kconfig tree is applied and the result
checked again (a required option that cannot hold on this source is exit 1,
nothing built; a recommended one is reported in `not_taken`); then `make bzImage
modules`: bzImage builds vmlinux (the PVH ELF the VM boots), and `modules`, with
no module to build, runs modules_prepare and the modpost that writes
Module.symvers (vmlinux alone leaves only vmlinux.symvers; out-of-tree modpost
needs Module.symvers). The tree is built beside its place
and renamed into it: an interrupted build never looks finished. A build is
keyed by the source's version, the merged fragments and the compiler, so the
same request returns at once and a changed one builds anew.

Edges: source_for() (extracts Debian's linux-source once), build_kernel().
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import lzma
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import EXIT_BUILD, EXIT_CHECKS_FAILED, EnvironmentProblem, UserError
from .kbuild import compiler_identity
from .kernels import makefile_version_fields
from .paths import cache_dir
from .procs import child_setup, kill_group

VM_PROFILE = "vm"
SOURCES = Path("/usr/src")
DONE = "dbgscaffold-kernel.done"  # written last, inside the tree, before it is renamed into place
TOOLS = (("make", "make"), ("gcc", "gcc"), ("flex", "flex"), ("bison", "bison"), ("bc", "bc"), ("perl", "perl"))
HEADERS = (("/usr/include/gelf.h", "libelf-dev"),)  # objtool (x86_64) needs libelf


class KernelBuildFailed(UserError):
    exit_code = EXIT_BUILD


class ProfilesUnsatisfiable(UserError):
    """The profiles cannot all hold on this source (check-config says why): exit 1, nothing built."""

    exit_code = EXIT_CHECKS_FAILED


@dataclass(frozen=True)
class KernelBuild:
    name: str  # e.g. "debug-6.1": the profiles joined by '+' (vm alone: "vm") and the series
    tree: Path  # the O= directory: what --kernel PATH takes
    release: str
    seconds: float  # 0.0 when it was already built
    config_fixes: tuple[str, ...] = ()  # lines check-config added because the fragments alone did not take
    not_taken: tuple[str, ...] = ()  # recommended options still off after the fix (e.g. not in this kernel's Kconfig)


def newest_source() -> str:
    """The series of the newest /usr/src/linux-source-X.Y.tar.xz, or an error saying what to install."""
    from .kernels import release_version

    found = sorted((p.name[len("linux-source-"):-len(".tar.xz")] for p in SOURCES.glob("linux-source-*.tar.xz")), key=release_version)
    if not found:
        raise EnvironmentProblem(f"error: no kernel source in {SOURCES}. Fix: apt-get install linux-source-6.1 (or pass --source PATH).")
    return found[-1]


def kernels_dir() -> Path:
    return cache_dir() / "kernels"


def _series_of(source: Path) -> str:
    try:
        fields = makefile_version_fields((source / "Makefile").read_text(errors="replace"))
    except OSError:
        fields = {}
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        raise UserError(f"{source}: error: not a kernel source tree (no VERSION/PATCHLEVEL in its Makefile). Fix: pass the top of a kernel source tree.")
    return f"{fields['VERSION']}.{fields['PATCHLEVEL']}"


def source_for(wanted: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """A kernel source tree: a directory as it is, or for a series ('6.1') Debian's
    /usr/src/linux-source-X.Y.tar.xz, extracted once into the cache."""
    path = Path(wanted)
    if path.is_dir():
        _series_of(path)
        return path.resolve()
    tarball = SOURCES / f"linux-source-{wanted}.tar.xz"
    if not tarball.is_file():
        have = ", ".join(sorted(p.name for p in SOURCES.glob("linux-source-*.tar.xz"))) or "none"
        raise EnvironmentProblem(f"error: no kernel source for {wanted} ({tarball} is missing; found: {have}). "
                                 f"Fix: apt-get install linux-source-{wanted}, or pass a source tree.")
    st = tarball.stat()
    dest = cache_dir() / "kernel-sources" / f"linux-source-{wanted}-{st.st_size}-{st.st_mtime_ns}"
    if (dest / "Makefile").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _lock(dest.parent / f"{dest.name}.lock"):
        if (dest / "Makefile").is_file():
            return dest
        tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            if log:
                log(f"extracting {tarball} (once)")
            try:
                with tarfile.open(tarball) as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, EOFError, lzma.LZMAError, OSError) as exc:
                raise EnvironmentProblem(f"{tarball}: error: cannot extract it into {dest.parent}: {exc}. "
                                         f"Fix: free disk space there (a 6.1 tree is ~1.4 GB) or reinstall linux-source-{wanted}.") from None
            top = [p for p in tmp.iterdir() if p.is_dir()]
            if len(top) != 1 or not (top[0] / "Makefile").is_file():
                raise UserError(f"{tarball}: error: not one kernel source tree inside. Fix: reinstall linux-source-{wanted}.")
            top[0].rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _fragments(profiles: Sequence[str]) -> list[Path]:
    from .kconfig.profiles import load_profile

    return [Path(load_profile(p).path) for p in dict.fromkeys([VM_PROFILE, *profiles])]


def build_name(source: Path, profiles: Sequence[str]) -> str:
    wanted = [p for p in profiles if p != VM_PROFILE]
    return f"{'+'.join(wanted) or VM_PROFILE}-{_series_of(source)}"


def build_key(source: Path, fragments: Sequence[Path]) -> str:
    parts = [str(source.resolve()), (source / "Makefile").read_text(errors="replace")[:512], compiler_identity()]
    parts += [f.read_text() for f in fragments]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def check_tools() -> None:
    missing = [pkg for tool, pkg in TOOLS if shutil.which(tool) is None]
    missing += [pkg for header, pkg in HEADERS if not Path(header).is_file()]
    if missing:
        raise EnvironmentProblem(f"error: building a kernel needs {', '.join(missing)}. Fix: apt-get install {' '.join(missing)}.")


def _run(argv: Sequence[str], what: str, source: Path, log_file: Path) -> None:
    """`argv` in its own process group, which is killed on every way out that unwinds
    (^C, and SIGTERM through cli.main: make -j's compilers must not write on into a tree
    being removed; a SIGKILL of ours leaves them to finish)."""
    with open(log_file, "ab") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=source,
                                env={**os.environ, "LC_ALL": "C"}, start_new_session=True, preexec_fn=child_setup)
        try:
            returncode = proc.wait()
        finally:
            kill_group(proc)
    if returncode != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-25:]
        if any("No space left on device" in x for x in tail):
            raise EnvironmentProblem(f"error: {what} failed: the disk under {log_file.parent} is full (No space left on device). "
                                     f"Fix: free space there (a debug kernel's tree takes ~1.5 GB), or set DBGSCAFFOLD_CACHE "
                                     "to a directory on a bigger disk.")
        raise KernelBuildFailed(f"error: {what} failed in {source} (exit {returncode}); the end of its output:\n"
                                + "\n".join(f"  {x}" for x in tail) + f"\nFix: see {log_file} (kept) and the messages above.")


def _make(source: Path, out: Path, log_file: Path, *targets: str, jobs: int = 1) -> None:
    _run(["make", "-C", str(source), f"O={out}", f"-j{jobs}", *targets], f"make {' '.join(targets)}", source, log_file)


def _failing(config: Path, profiles: Sequence[str]) -> tuple[list[str], list[str]]:
    """The profiles' lines that did not take in `config`: (required, recommended).
    Options the profile dates or limits to other kernels/arches do not count."""
    from .kconfig.dotconfig import read_dotconfig
    from .kconfig.flat import FAIL, check_flat
    from .kconfig.profiles import load_profile

    loaded = [load_profile(p) for p in dict.fromkeys([VM_PROFILE, *profiles])]
    failed = [r for r in check_flat(read_dotconfig(config), loaded) if r.status == FAIL]
    required = [f"CONFIG_{r.symbol}" for r in failed if r.failed_required]
    return required, [f"CONFIG_{r.symbol}" for r in failed if not r.failed_required]


def _configure(source: Path, out: Path, profiles: Sequence[str], log_file: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """tinyconfig + the fragments, made to hold (see the module's docstring):
    (the lines check-config added, the recommended options still off)."""
    from .kconfig.check import CheckRequest, run_check

    fragments = _fragments(profiles)
    _make(source, out, log_file, "tinyconfig")
    merge = source / "scripts" / "kconfig" / "merge_config.sh"
    _run(["bash", str(merge), "-m", "-O", str(out), str(out / ".config"), *map(str, fragments)], "merge_config.sh", source, log_file)
    _make(source, out, log_file, "olddefconfig")
    required, recommended = _failing(out / ".config", profiles)
    if not required and not recommended:
        return (), ()
    names = tuple(dict.fromkeys([VM_PROFILE, *profiles]))
    fixed = out / ".config.fixed"
    # strict: the fix covers the recommended lines too (every fragment line should take).
    report = run_check(CheckRequest(config=out / ".config", profiles=names, srctree=source, tree="always", runtime=False,
                                    strict=True, apply=fixed))
    added = report.fix.fragment.splitlines() if report.fix is not None else []
    if fixed.is_file():
        fixed.replace(out / ".config")
        _make(source, out, log_file, "olddefconfig")
    required, recommended = _failing(out / ".config", profiles)
    if required:
        raise ProfilesUnsatisfiable(f"error: {', '.join(names)} cannot all hold on {source}: {', '.join(required)} stay off after "
                                    f"check-config's fix. Fix: see why with: dbgscaffold check-config {out / '.config'} "
                                    f"--srctree {source} " + " ".join(f"-p {n}" for n in names))
    return tuple(added), tuple(recommended)


def build_kernel(source: Path, profiles: Sequence[str] = (), jobs: int | None = None,
                 log: Callable[[str], None] | None = None, root: Path | None = None) -> KernelBuild:
    """The kernel of `profiles` (plus the VM's) from `source`, built once (see the module's docstring)."""
    source = Path(source).resolve()
    fragments = _fragments(profiles)  # an unknown profile is an error before anything runs
    name = build_name(source, profiles)
    root = root or kernels_dir()
    tree = root / f"{name}-{build_key(source, fragments)}"
    if (tree / DONE).is_file():
        return KernelBuild(name, tree, _release(tree), 0.0)
    check_tools()
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f"{tree.name}.lock"):
        if (tree / DONE).is_file():  # another process built it while we waited
            return KernelBuild(name, tree, _release(tree), 0.0)
        shutil.rmtree(tree, ignore_errors=True)  # a tree without DONE is the rest of an older attempt
        tmp = root / f".{tree.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        log_file = root / f"{tree.name}.log"
        t0 = time.monotonic()
        try:
            tmp.mkdir()
            log_file.write_text("")
            if log:
                log(f"configuring {name}: tinyconfig + {', '.join(p.name for p in fragments)}")
            added, not_taken = _configure(source, tmp, profiles, log_file)
            if log and not_taken:
                log(f"recommended but off on this source (check-config could not set them): {', '.join(not_taken)}")
            if log:
                log(f"building {name} with make -j{jobs or os.cpu_count() or 1} (bzImage, modules); log: {log_file}")
            _make(source, tmp, log_file, "bzImage", "modules", jobs=jobs or os.cpu_count() or 1)
            (tmp / DONE).write_text(f"{name}\n")
            tmp.rename(tree)
        except OSError as exc:  # ours, not make's: e.g. writing DONE on a full disk
            shutil.rmtree(tmp, ignore_errors=True)
            fix = ("free space there, or set DBGSCAFFOLD_CACHE to a directory on a bigger disk" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                   else f"make {root} writable, or set DBGSCAFFOLD_CACHE to a directory that is")
            raise EnvironmentProblem(f"error: building {name} in {root}: {exc}. Fix: {fix}.") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # disk full, ^C, a failed make: nothing half-built stays
            raise
    return KernelBuild(name, tree, _release(tree), time.monotonic() - t0, added, not_taken)


def built_kernels(root: Path | None = None) -> list[KernelBuild]:
    """Every finished build in the cache, newest first (a name may have older builds:
    another compiler or profile text)."""
    root = root or kernels_dir()
    found = []
    for done in root.glob(f"*/{DONE}") if root.is_dir() else ():
        tree = done.parent
        found.append((done.stat().st_mtime, KernelBuild(done.read_text().strip() or tree.name, tree, _release(tree), 0.0)))
    return [b for _, b in sorted(found, key=lambda x: -x[0])]


def find_built(name: str, root: Path | None = None) -> KernelBuild | None:
    """The newest finished build called `name` ('debug-6.1'), or None."""
    return next((b for b in built_kernels(root) if b.name == name), None)


def _release(tree: Path) -> str:
    from .kernels import parse_utsrelease

    return parse_utsrelease((tree / "include" / "generated" / "utsrelease.h").read_text()) or "?"
