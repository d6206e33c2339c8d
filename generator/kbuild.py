"""Run kbuild on a module directory and turn its output into diagnostics.

`parse_diagnostics()` is pure and knows gcc's, sparse's and modpost's line
formats; `build()` runs make and returns a BuildResult.  `scratch_build()`
builds a throw-away copy of a project; `incremental_build()` keeps one copy
per (project, kernel build dir, compiler) in the cache so an unchanged
project is a no-op make and a one-file change recompiles one file.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import kbuild_probes, paths
from .errors import EnvironmentProblem, UserError
from .procs import track, untrack

# gcc and sparse: "file.c:12:5: warning: message [-Wflag]"
_COMPILER_RE = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)?\s*"
    r"(?P<sev>warning|error|fatal error|note):\s*(?P<msg>.*)$"
)
_STEP_RE = re.compile(r"^\s+(CHECK|CC \[M\]|CC)\s+\S")
_MODPOST_RE = re.compile(r"^(?P<sev>WARNING|ERROR): modpost: (?P<msg>.*)$")
_MAKE_ERROR_RE = re.compile(r"^make(?:\[\d+\])?: \*\*\* (?P<msg>.*)$")


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "warning", "error" or "note"
    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    tool: str = "gcc"  # gcc (or sparse: same format), modpost, make

    def __str__(self) -> str:
        where = ":".join(str(x) for x in (self.file, self.line, self.column) if x)
        return f"{where + ': ' if where else ''}{self.severity}: {self.message}"


def parse_diagnostics(output: str) -> list[Diagnostic]:
    """Every warning and error in kbuild output; notes and progress lines are dropped."""
    found = []
    tool = "gcc"
    for raw in output.splitlines():
        line = raw.rstrip()
        # kbuild names each step before its messages: "  CHECK   x.c" (sparse), "  CC [M]  x.o" (gcc)
        step = _STEP_RE.match(line)
        if step:
            tool = "sparse" if step[1] == "CHECK" else "gcc"
            continue
        m = _COMPILER_RE.match(line)
        if m:
            sev = "error" if m["sev"] == "fatal error" else m["sev"]
            if sev == "note":
                continue
            found.append(Diagnostic(sev, m["msg"], m["file"], int(m["line"]), int(m["col"] or 0), tool))
            continue
        m = _MODPOST_RE.match(line)
        if m:
            found.append(Diagnostic(m["sev"].lower(), m["msg"], tool="modpost"))
            continue
        m = _MAKE_ERROR_RE.match(line)
        if m:
            found.append(Diagnostic("error", m["msg"], tool="make"))
    return found


_CLASH_RE = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):\d+: note: previous declaration of [‘'](?P<name>\w+)[’']", re.M
)
_REDECLARED_RE = re.compile(
    r"error: (?:[‘'](?P<a>\w+)[’'] redeclared as different kind of symbol|conflicting types for [‘'](?P<b>\w+)[’']"
    r"|static declaration of [‘'](?P<c>\w+)[’'] follows non-static declaration)"
)


# The shell's own words for a program kbuild ran that is not there (dash, then bash).
_NOT_FOUND = re.compile(r"^(?:/bin/sh: \d+: (\S+): not found|/bin/sh: (\S+): command not found)$", re.M)
# Debian packages of the programs kbuild runs, by name (a versioned compiler by its version).
_PACKAGES = {"bc": "bc", "perl": "perl", "pahole": "dwarves", "flex": "flex", "bison": "bison", "openssl": "openssl",
             "ld": "binutils", "as": "binutils", "objcopy": "binutils", "gcc": "gcc", "make": "make"}


def missing_tool(output: str) -> tuple[str, str] | None:
    """(program, Debian package) when make's output says a program it ran is not installed."""
    m = _NOT_FOUND.search(output)
    if m is None:
        return None
    program = m.group(1) or m.group(2)
    name = program.rsplit("/", 1)[-1]
    compiler = re.fullmatch(r"(?:[\w-]+-linux-gnu-)?(gcc|cpp|ld|as)(-\d+)?", name)
    if compiler and compiler.group(1) in ("ld", "as"):
        return program, "binutils"
    if compiler:  # gcc-12 (Debian's headers name the compiler their kernel was built with)
        return program, "gcc" + (compiler.group(2) or "")
    return program, _PACKAGES.get(name, name)


def kernel_name_clashes(output: str, project: Path) -> list[str]:
    """For each name the project redeclares that a kernel header declared first: a
    note naming the header and the fix (gcc says what, not that the name is the kernel's)."""
    redeclared = {m["a"] or m["b"] or m["c"] for m in _REDECLARED_RE.finditer(output)}
    prefix = str(Path(project).resolve()) + "/"
    notes = []
    for m in _CLASH_RE.finditer(output):
        name = m["name"]
        if name in redeclared and not m["file"].startswith(prefix):
            redeclared.discard(name)
            notes.append(
                f"'{name}' is the kernel's own name ({m['file']}:{m['line']}): your module cannot define it. "
                f"Fix: rename it; in a generated project the names are <module>_<entry>, so rename the module "
                f"([module].name in dbgscaffold.toml, then 'dbgscaffold regen') or the entry."
            )
    return notes


@dataclass
class BuildResult:
    returncode: int
    output: str
    seconds: float
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def warm_probes(kdir: Path, args: Sequence[str], env: Mapping[str, str], answers: Path | None) -> None:
    """Record this tree's probe answers for make arguments `args` and environment `env` (a
    sandbox's) in `answers` (kbuild_probes.answers_for: None, no cache to use) with a build of
    our own (a one-line module), once: a sandboxed build only reads answers, and the first
    one would otherwise leave every later one probing anew."""
    if answers is None:
        return
    warmed = answers.with_suffix(".warmed")
    wanted = "warmed"
    if kbuild_probes.usable(answers) and paths.read_or_empty(warmed) == wanted:
        return
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-probes-") as tmp:
        (Path(tmp) / "probe_warmup.c").write_text(kbuild_probes.WARMUP_C)
        (Path(tmp) / "Kbuild").write_text("obj-m := probe_warmup.o\n")
        ok = build(Path(tmp), kdir, extra_args=args, env=env).ok
    if ok and kbuild_probes.usable(answers):
        with contextlib.suppress(OSError):
            kbuild_probes.write_private(warmed, wanted.encode())


def build(project: Path, kdir: Path, extra_warnings: bool = False, sparse: bool = False, target: str = "modules", timeout: float = 600,
          extra_args: Sequence[str] = (), probes: bool = True, env: Mapping[str, str] | None = None) -> BuildResult:
    """`make -C kdir M=project [W=1] [C=2] [extra_args] target`, output captured and parsed,
    in our environment or `env`. With `probes`, kbuild's compiler probes are answered from
    the cache (kbuild_probes)."""
    if shutil.which("make") is None:
        raise EnvironmentProblem("error: 'make' is not installed. Fix: apt-get install build-essential.")
    if not (Path(kdir) / "Makefile").is_file():
        raise EnvironmentProblem(
            f"{kdir}: error: not a kernel build directory (no Makefile). "
            "Fix: install the headers (apt-get install linux-headers-<release>) or pass --kdir."
        )
    if sparse and shutil.which("sparse") is None:
        raise EnvironmentProblem("error: 'sparse' is not installed. Fix: apt-get install sparse.")
    make_args = [*(["W=1"] if extra_warnings else []), *(["C=2"] if sparse else []), *extra_args]
    env = {**(os.environ if env is None else env), "LC_ALL": "C"}
    answers = kbuild_probes.answers_for(kdir, make_args, env) if probes else None
    record = kbuild_probes.new_record(answers) if answers is not None else None
    probe_args = kbuild_probes.make_args(answers if kbuild_probes.usable(answers) else None, record) if answers is not None else []
    if answers is not None and probe_args:
        kbuild_probes.used(answers)
    argv = ["make", "-C", str(kdir), f"M={Path(project).resolve()}", *probe_args, *make_args, target]
    start = time.monotonic()
    # its own process group, so a timeout stops gcc too and nothing keeps
    # writing into a build tree the next run (incremental_build) will use
    try:
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True) as proc:
            track(proc)  # ^C in the main thread stops it (procs.kill_tracked)
            try:
                output, _ = proc.communicate(timeout=timeout)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                _drop_probe_dirs(project)
                raise
            finally:
                untrack(proc)
    finally:
        if answers is not None and record is not None:
            kbuild_probes.merge(answers, record)  # whole lines only, also after a kill
    if proc.returncode < 0:
        _drop_probe_dirs(project)
    seconds = time.monotonic() - start
    return BuildResult(proc.returncode, output, seconds, parse_diagnostics(output))


def _drop_probe_dirs(project: Path) -> None:
    """Remove kbuild's compiler-probe directories (M=/.tmp_<pid>, scripts/Makefile.compiler):
    their shell's EXIT trap removes them, but not when a signal kills it."""
    for leftover in Path(project).glob(".tmp_*"):
        if re.fullmatch(r"\.tmp_[0-9]+", leftover.name) and leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


BUILD_INPUTS = ("Kbuild", "Makefile")
SOURCE_SUFFIXES = (".c", ".h", ".S")
MAX_SOURCE_FILES = 2000  # a "module" with more is someone's home directory
_NOT_SOURCES = ("tests",)  # the user's VM checks, not kbuild's business


def _walk(project: Path) -> Iterator[Path]:
    """Every file below `project`, outside hidden directories and tests/."""
    for dirpath, dirnames, filenames in os.walk(project):
        top = Path(dirpath) == project
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (top and d in _NOT_SOURCES))
        for name in filenames:
            yield Path(dirpath) / name


def source_files(project: Path) -> list[Path]:
    """The C and assembler sources and headers of a project, in any subdirectory
    (not kbuild's own *.mod.c)."""
    project = Path(project)
    files = [p for p in _walk(project) if p.suffix in SOURCE_SUFFIXES and not p.name.endswith(".mod.c")]
    if len(files) > MAX_SOURCE_FILES:
        raise UserError(f"{project}: error: {len(files)} source files below it; a module project has far fewer. "
                        "Fix: pass the module's own directory.")
    return sorted(files)


def build_inputs(project: Path) -> list[Path]:
    """What a build copy of `project` holds, relative to it: its sources and
    headers plus every Kbuild and Makefile (a subdirectory may have its own)."""
    project = Path(project)
    found = [p.relative_to(project) for p in source_files(project)]
    return found + sorted(p.relative_to(project) for p in _walk(project) if p.name in BUILD_INPUTS)


_OBJ_M = re.compile(r"^\s*obj-(?:m|\$\(CONFIG_\w+\))\s*[:+]?=", re.M)


def module_makefile(project: Path) -> Path:
    """The file that tells kbuild what to build (Kbuild, else a Makefile naming obj-m);
    a UserError (exit 2) saying what is missing otherwise."""
    project = Path(project)
    if not project.is_dir():
        raise UserError(f"{project}: error: no such directory. Fix: pass the module's directory.")
    kbuild, makefile = project / "Kbuild", project / "Makefile"
    if kbuild.is_file():
        return kbuild
    if not makefile.is_file():
        raise UserError(f"{project}: error: not a module directory: no Kbuild and no Makefile. "
                        "Fix: add a Kbuild file with 'obj-m := NAME.o' (or pass the module's directory).")
    if not _OBJ_M.search(makefile.read_text(errors="replace")):
        raise UserError(f"{makefile}: error: the Makefile names no obj-m, so kbuild would build nothing. "
                        "Fix: add 'obj-m += NAME.o' for each module (or a Kbuild file with it).")
    return makefile


def relocate(result: BuildResult, copy: Path, project: Path) -> BuildResult:
    """Make the messages of a build of `copy` name the user's files in `project`."""
    result.output = result.output.replace(str(copy), str(project))
    result.diagnostics = [replace(d, file=d.file.replace(str(copy), str(project)), message=d.message.replace(str(copy), str(project)))
                          for d in result.diagnostics]
    return result


@contextmanager
def scratch_build(project: Path, kdir: Path, extra_warnings: bool = False, sparse: bool = False) -> Iterator[tuple[Path, BuildResult]]:
    """Build a scratch copy of the project's sources against `kdir`.

    Yields (the copy, the result) while the copy exists, so callers can take
    the .ko out; the project directory is left as it was and builds for
    different kernels never share objects.  Messages name the user's files.
    """
    project = Path(project).resolve()
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-build-") as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        for rel in build_inputs(project):
            dst = copy / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project / rel, dst)
        result = build(copy, kdir, extra_warnings=extra_warnings, sparse=sparse)
        yield copy, relocate(result, copy, project)


# ---------------------------------------------------------------- incremental builds in the cache

BUILDS_FORMAT = "dbgscaffold-builds-1"  # bump when the tree layout or sync rules change
_IN_PROGRESS = "BUILDING"  # present while a sync + make may have left the tree half-done
_OWNER = "owner.json"  # which project and kdir a tree belongs to (for pruning)
_BUILT = "BUILT"  # written after a successful make; its mtime is the build's "after"
UP_TO_DATE_NOTE = "dbgscaffold: nothing changed since the last build (sources, kbuild's recorded dependencies); make not run"
RETRY_NOTE = "dbgscaffold: the cached build tree failed without a compiler error; rebuilt it from a clean tree"


def builds_dir() -> Path:
    """Where the persistent build trees live: <cache>/builds."""
    return (paths.cache_dir() / "builds").resolve()


@functools.cache
def compiler_identity(cc: str = "gcc") -> str:
    """First line of `cc --version` (kbuild's CC is plain gcc on Debian's headers), or why not."""
    try:
        proc = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"no {cc}: {exc.__class__.__name__}"
    return (proc.stdout.splitlines() or [f"{cc} exited {proc.returncode}"])[0].strip()


def build_key(project: Path, kdir: Path, make_args: Sequence[str] = (), compiler: str | None = None) -> str:
    """The name of a project's build tree for one kernel build dir.

    Changes with the resolved project and kdir paths, the kdir's UTS_RELEASE
    header (a headers upgrade gives a new key) and its Module.symvers (a
    rebuilt kernel of the same release), the compiler's version line, the
    extra make arguments (W=1, C=2: kbuild would rebuild every object on a
    flag change anyway) and the environment kbuild reads.
    """
    kdir = Path(kdir).resolve()
    parts = [
        BUILDS_FORMAT,
        str(Path(project).resolve()),
        str(kdir),
        paths.read_or_empty(kdir / "include" / "generated" / "utsrelease.h"),
        paths.file_identity(kdir / "Module.symvers"),
        compiler if compiler is not None else compiler_identity(),
        *("arg=" + a for a in make_args),
        *(f"{k}={os.environ.get(k, '')}" for k in kbuild_probes.ENV_IN_KEY),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


@contextmanager
def _locked(lock_path: Path, blocking: bool = True) -> Iterator[bool]:
    """flock on `lock_path` (created if missing); yields False when not blocking and busy.
    Re-checks after locking that the file is still the one at the path, so a
    pruner may unlink lock files it holds."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield True
                return
        finally:
            os.close(fd)  # releases the lock


def _wipe(tree: Path) -> None:
    shutil.rmtree(tree / "src", ignore_errors=True)


def _changed(project: Path, src: Path) -> list[tuple[Path, Path, bytes]]:
    """(relative path, its copy in `src`, the project's bytes) of every input whose bytes differ."""
    changed = []
    for rel in build_inputs(project):
        data = (project / rel).read_bytes()
        dst = src / rel
        try:
            if dst.read_bytes() == data:
                continue
        except OSError:
            pass
        changed.append((rel, dst, data))
    return changed


def _sync(project: Path, src: Path, changed: list[tuple[Path, Path, bytes]] | None = None) -> list[Path]:
    """Copy into `src` the inputs whose bytes differ (`changed`, when already known;
    mtime set to now, never older than anything already in `src`); leave identical
    files alone. Returns what was copied, relative."""
    changed = _changed(project, src) if changed is None else changed
    if not changed:
        return []
    newest = max((p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()), default=0)
    now = max(time.time_ns(), newest + 1_000_000)
    for _, dst, data in changed:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        os.utime(dst, ns=(now, now))
    return [rel for rel, _, _ in changed]


def _needs_clean(project: Path, tree: Path) -> bool:
    """Start from an empty tree when the last run stopped mid-build, or when the
    set of files or the Kbuild/Makefile changed: a removed foo.c would leave
    foo.o for the link, a renamed module its old .ko, a new header could
    shadow another one the .cmd files recorded."""
    src = tree / "src"
    if not src.is_dir() or (tree / _IN_PROGRESS).exists():
        return True
    if set(build_inputs(project)) != set(build_inputs(src)):
        return True
    for rel in build_inputs(project):
        if rel.name in BUILD_INPUTS and (project / rel).read_bytes() != (src / rel).read_bytes():
            return True
    return False


_DEP = re.compile(r"^\s+(?:\$\(wildcard (\S+)\)|(\S+?))\s*\\?$")


def _cmd_inputs(cmd_text: str) -> tuple[set[str], set[str]]:
    """The files a kbuild .cmd file says its target was made from: (source_ and
    deps_ entries, `$(wildcard ...)` entries that need not exist)."""
    needed: set[str] = set()
    optional: set[str] = set()
    in_deps = False
    for line in cmd_text.splitlines():
        if line.startswith(("source_", "deps_")):
            name, _, rest = line.partition(":=")
            in_deps = name.startswith("deps_")
            if not in_deps and rest.strip():
                needed.add(rest.strip())
            continue
        m = _DEP.match(line) if in_deps else None
        if m is None:
            in_deps = False
            continue
        (optional if m.group(1) else needed).add(m.group(1) or m.group(2))
    return needed, optional


def _up_to_date(tree: Path, kdir: Path) -> bool:
    """make would find nothing to do: the last make succeeded (BUILT), nothing in
    src changed since (no file newer, none added or removed: the directory's
    mtime), the .ko is there, and no file the .cmd files list as a source or
    dependency (kernel headers, the config) changed or vanished since.  This
    answers in milliseconds where a no-op make takes ~0.6 s (it reads kbuild's
    makefiles); anything unusual falls back to make."""
    src = tree / "src"
    try:
        built = (tree / _BUILT).stat().st_mtime_ns
        if src.stat().st_mtime_ns > built or not any(src.rglob("*.ko")):
            return False
        cmds = list(src.rglob(".*.cmd"))
        if not cmds:
            return False
        for f in src.iterdir():
            if f.stat().st_mtime_ns > built:
                return False
        needed: set[str] = set()
        optional: set[str] = set()
        for cmd in cmds:
            n, o = _cmd_inputs(cmd.read_text(errors="replace"))
            needed |= n
            optional |= o
    except OSError:
        return False
    kdir = Path(kdir)
    for name in needed | optional:
        path = kdir / name  # relative names are relative to kdir, where make runs
        try:
            if path.stat().st_mtime_ns > built:
                return False
        except OSError:
            if name in needed:
                return False
    return True


def _damaged(src: Path) -> bool:
    """A .ko in the tree that is no ELF relocatable object (overwritten, truncated): make
    trusts it by its mtime, so only a clean tree builds it again."""
    for ko in src.rglob("*.ko"):
        try:
            with open(ko, "rb") as f:
                head = f.read(18)
        except OSError:
            return True
        if len(head) < 18 or head[:4] != b"\x7fELF" or int.from_bytes(head[16:18], "little") != 1:  # e_type ET_REL
            return True
    return False


def _compiler_failed(result: BuildResult) -> bool:
    """True when gcc or sparse reported an error: a real fault in the sources
    (or in how they use the kernel's headers) that a clean rebuild would repeat."""
    return any(d.severity == "error" and d.tool in ("gcc", "sparse") for d in result.diagnostics)


@contextmanager
def incremental_build(project: Path, kdir: Path, extra_make_args: Sequence[str] = (), *, extra_warnings: bool = False,
                      sparse: bool = False, timeout: float = 600) -> Iterator[tuple[Path, BuildResult]]:
    """Build `project` against `kdir` in its persistent tree under <cache>/builds.

    Yields (the build dir, the result) like scratch_build, holding the tree's
    lock until the with-block ends, so take the .ko out inside it.  Only files
    whose bytes differ from the tree's copy are copied (with a fresh mtime),
    so make recompiles exactly what changed; nothing is written into the
    project.  Messages name the user's files.  A build dir may still hold an
    older .ko when the build failed: look at result.ok first.

    A failed build of a reused tree without a compiler error (a damaged tree:
    truncated object, broken .cmd file), or one that leaves a .ko that is no
    object file, is retried once from a clean tree.
    Warnings of files that were not recompiled are not repeated, so a lint
    that must see every warning keeps using scratch_build.
    """
    project = Path(project).resolve()
    args = [*(["W=1"] if extra_warnings else []), *(["C=2"] if sparse else []), *extra_make_args]
    root = builds_dir()
    root.mkdir(parents=True, exist_ok=True)
    key = build_key(project, kdir, args)
    tree = root / key
    prune_builds(root, keep=key)
    with _locked(root / f"{key}.lock"):
        tree.mkdir(exist_ok=True)
        src = tree / "src"
        owner = json.dumps({"project": str(project), "kdir": str(Path(kdir).resolve())})
        if paths.read_or_empty(tree / _OWNER) != owner:
            (tree / _OWNER).write_text(owner)
        clean = _needs_clean(project, tree)
        changed = None if clean else _changed(project, src)
        if changed == [] and _up_to_date(tree, kdir) and not _damaged(src):
            yield src, BuildResult(0, UP_TO_DATE_NOTE, 0.0)
            return
        (tree / _BUILT).unlink(missing_ok=True)
        (tree / _IN_PROGRESS).touch()
        if clean:
            _wipe(tree)
        src.mkdir(exist_ok=True)
        _sync(project, src, changed)  # after a wipe (changed is None) everything is copied
        result = build(src, kdir, extra_args=args, timeout=timeout)
        killed = result.returncode < 0  # a signal (^C: procs.kill_tracked), not a damaged tree
        if not clean and not killed and (result.ok and _damaged(src) or not result.ok and not _compiler_failed(result)):
            first = result.seconds
            _wipe(tree)
            src.mkdir()
            _sync(project, src)
            result = build(src, kdir, extra_args=args, timeout=timeout)
            result.seconds += first
            result.output = f"{RETRY_NOTE}\n{result.output}"
        (tree / _IN_PROGRESS).unlink()
        if result.ok:
            (tree / _BUILT).touch()
        yield src, relocate(result, src, project)


def prune_builds(root: Path | None = None, keep: str = "") -> int:
    """Delete the build trees whose project or kdir no longer exists (projects
    made in temporary directories); skips trees in use.  Returns how many went."""
    root = Path(root) if root is not None else builds_dir()
    gone = 0
    for owner_file in root.glob(f"*/{_OWNER}"):
        tree = owner_file.parent
        if tree.name == keep:
            continue
        try:
            owner = json.loads(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if Path(owner.get("project", "")).is_dir() and Path(owner.get("kdir", "")).is_dir():
            continue
        lock = root / f"{tree.name}.lock"
        with _locked(lock, blocking=False) as mine:
            if mine:
                shutil.rmtree(tree, ignore_errors=True)
                lock.unlink(missing_ok=True)
                gone += 1
    return gone
