"""Run a command on untrusted input inside a bubblewrap sandbox, bounded in time, processes and output.

What the command sees of the host is /usr and /etc (and /bin, /lib... that link there),
read-only: programs, libraries, the kernel headers; nothing else exists (homes, /tmp,
/var, /opt, the cache, the submissions), and where the home, the cache or a caller's
`hide` lie under /usr or /etc they are empty tmpfs mounts. Its inputs appear read-only;
its one writable place is its own size-capped /tmp; no network; its own PID, IPC, UTS
(and, unless we are root, user) namespaces. When we are root it runs as nobody with no
capability, so root's own files (/etc/shadow) stay unreadable. Limits: CPU seconds,
processes and address space per process (prlimit), the bytes of any one file and of
/tmp, wall time, and what it prints: past the limit it is stopped, and only the first
and last part of its output is kept.

Nothing it writes reaches the host except through two pipes we read with caps:
its output, and fd 3 (a tar of the build's products, say), read into memory.

Pure: Limits, sandbox_argv(), hidden_paths(). Edges: available(), run().
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .bounded import Kept
from .errors import EnvironmentProblem
from .paths import cache_location
from .procs import child_setup, kill_group, track, untrack

NOBODY = 65534  # the sandbox's user when we are root
RESULT_FD = 3  # the command writes its products here
WORK = "/tmp/work"  # the command's working directory, in the sandbox's size-capped /tmp
INPUTS = "/tmp/in"  # where callers usually put their inputs
# All the sandbox sees of the host, read-only: programs, libraries, the kernel headers
# (/usr/src) and system configuration; the top-level links into /usr of a merged-/usr
# system. Nothing else exists in it (homes, /tmp, /var, /opt, /srv, the cache, the
# submissions) but its inputs, a fresh /dev, /proc and its own /tmp.
SYSTEM = ("/usr", "/etc")
TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
# Environment kbuild reads that a user may set (a compiler, a cross build): passed in.
KBUILD_ENV = ("ARCH", "CROSS_COMPILE", "LLVM", "CC", "HOSTCC", "KCFLAGS")
INSTALL_FIX = "Fix: apt-get install bubblewrap"


class SandboxUnavailable(EnvironmentProblem):
    """bubblewrap is missing or cannot create namespaces here (exit 4)."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 300  # CPU time of each process (RLIMIT_CPU)
    wall_seconds: float = 600.0  # then the whole sandbox is killed
    processes: int = 256  # at once, in the sandbox (RLIMIT_NPROC): a fork bomb stops here
    memory_bytes: int = 4 << 30  # address space of each process (RLIMIT_AS)
    file_bytes: int = 256 << 20  # any one file written (RLIMIT_FSIZE)
    work_bytes: int = 512 << 20  # the sandbox's /tmp, the only place it can write
    output_bytes: int = 8 << 20  # printed in all; past it the sandbox is stopped
    kept_bytes: int = 256 << 10  # of the output, the first and the last this many are kept
    result_bytes: int = 256 << 20  # read from RESULT_FD; past it the sandbox is stopped


@dataclass(frozen=True)
class Input:
    """A host directory shown read-only at `dest` in the sandbox."""

    host: Path
    dest: str


@dataclass(frozen=True)
class Ran:
    returncode: int | None  # None: we stopped it
    output: str  # stdout and stderr together, bounded (a marker where the middle was cut)
    result: bytes  # what it wrote to RESULT_FD
    seconds: float
    stopped: str  # "" or why we stopped it


# ---------------------------------------------------------------- pure


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def hidden_paths(extra: Sequence[Path] = ()) -> list[str]:
    """Directories inside SYSTEM the sandbox sees as empty: the user's home, the cache and
    `extra` (the submissions, a lab's hidden checks) where they lie there (dbgscaffold
    installed under /usr, say); nested ones are dropped (their parent hides them)."""
    wanted = {os.path.realpath(p) for p in (str(Path.home()), str(cache_location()), *map(str, extra))}
    paths = sorted(p for p in wanted if _under(p, SYSTEM) and p not in SYSTEM)
    return [p for p in paths if not any(p.startswith(q.rstrip("/") + "/") for q in paths if q != p)]


def shown(paths: Sequence[Path], hide: Sequence[Path] = ()) -> list[Input]:
    """Inputs that show each of `paths` (read-only, at its real path) where the sandbox
    would not see it (a kernel tree or a stap runtime in the cache, say)."""
    hidden = hidden_paths(hide)
    out: list[Input] = []
    for path in paths:
        real = os.path.realpath(path)
        seen = _under(real, SYSTEM) and not _under(real, hidden)
        if not seen and os.path.isdir(real) and all(i.host != Path(real) for i in out):
            out.append(Input(Path(real), real))
    return out


def prlimit_argv(limits: Limits) -> list[str]:
    return ["prlimit", f"--cpu={limits.cpu_seconds}", f"--nproc={limits.processes}", f"--as={limits.memory_bytes}",
            f"--fsize={limits.file_bytes}", "--core=0", "--"]


# As root, bwrap makes no user namespace (in one, files of the mapped root would still be
# root's to read): it mounts as root, then setpriv drops to nobody with every capability gone.
DROP_ROOT = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs",
             "--bounding-set=-all", "--inh-caps=-all", "--"]
NAMESPACES_AS_ROOT = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
NAMESPACES_AS_USER = ["--unshare-all"]  # with a user namespace: the only way without privileges


def environment() -> dict[str, str]:
    """The environment a sandboxed command gets: ours for kbuild's own variables, no more."""
    return {"PATH": PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LC_ALL": "C",
            **{name: os.environ[name] for name in KBUILD_ENV if os.environ.get(name)}}


def sandbox_argv(command: Sequence[str], inputs: Sequence[tuple[str, str]], hidden: Sequence[str], limits: Limits,
                 as_root: bool) -> list[str]:
    """The bwrap command line; `inputs` are (host directory, dest) pairs."""
    argv = ["bwrap"]
    for root in SYSTEM:
        argv += ["--ro-bind", root, root]
    for name in TOP_LINKS:
        top = f"/{name}"
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    for path in hidden:
        if os.path.isdir(path):
            argv += ["--tmpfs", path]
    argv += ["--size", str(limits.work_bytes), "--perms", "01777", "--tmpfs", "/tmp", "--perms", "01777", "--dir", WORK]
    for source, dest in inputs:
        for parent in reversed(Path(dest).parents[:-1]):  # bwrap would make them 0700: nobody could not pass
            argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind", source, dest]
    argv += [*(NAMESPACES_AS_ROOT if as_root else NAMESPACES_AS_USER), "--hostname", "sandbox", "--chdir", WORK,
             "--die-with-parent", "--new-session", "--clearenv"]
    for name, value in environment().items():
        argv += ["--setenv", name, value]
    argv.append("--")
    return argv + (DROP_ROOT if as_root else []) + prlimit_argv(limits) + list(command)


# ---------------------------------------------------------------- edges


@functools.cache
def _probe() -> tuple[str, str]:
    """('', '') when bubblewrap works here, else (why not, how to fix it)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed", INSTALL_FIX
    try:
        proc = subprocess.run(sandbox_argv(["true"], [], [], Limits(), os.geteuid() == 0), capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap did not run ({exc})", INSTALL_FIX
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return (f"bubblewrap cannot create its namespaces here ({why})",
                "Fix: run where unprivileged user namespaces are allowed (not in a container that forbids them)")
    return "", ""


def available() -> str:
    """'' when sandboxed runs work here, else the reason (for doctor and the refusals)."""
    return _probe()[0]


def require(what: str) -> None:
    """Raise SandboxUnavailable (exit 4) when `what` cannot be sandboxed here."""
    why, fix = _probe()
    if why:
        raise SandboxUnavailable(f"error: {what} builds untrusted code only in a sandbox, and {why}. "
                                 f"{fix}; or, if you trust every submission, pass --no-sandbox.")


def _pump(fd: int, sink: Kept | bytearray, cap: int, over: threading.Event) -> None:
    """Read `fd` to its end into `sink`; set `over` once more than `cap` bytes came."""
    total = 0
    with os.fdopen(fd, "rb", buffering=0) as f:
        while chunk := f.read(65536):
            total += len(chunk)
            if isinstance(sink, Kept):
                sink.add(chunk)
            elif total <= cap:
                sink += chunk
            if total > cap:
                over.set()


def run(command: Sequence[str], inputs: Sequence[Input], limits: Limits = Limits(), hide: Sequence[Path] = ()) -> Ran:
    """Run `command` (argv, inside the sandbox) with `inputs` read-only, WORK writable.
    Raises SandboxUnavailable when bubblewrap cannot work here."""
    require("this command")
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    try:
        # the result pipe comes in as stdin (dash cannot name an fd above 9) and becomes fd 3
        redirect = ["sh", "-c", f'exec {RESULT_FD}>&0 </dev/null; exec "$@"', "sh"]
        argv = sandbox_argv([*redirect, *command], [(str(i.host), i.dest) for i in inputs], hidden_paths(hide), limits,
                            os.geteuid() == 0)
        start = time.monotonic()
        # preexec: bwrap dies with us even by SIGKILL; its --die-with-parent takes the rest
        proc = subprocess.Popen(argv, stdin=res_w, stdout=out_w, stderr=out_w, start_new_session=True, preexec_fn=child_setup)
        track(proc)
    except BaseException:
        for fd in (out_r, res_r):
            os.close(fd)
        raise
    finally:
        for fd in (out_w, res_w):
            os.close(fd)
    output, result = Kept(limits.kept_bytes), bytearray()
    too_much = threading.Event()
    readers = [threading.Thread(target=_pump, args=(out_r, output, limits.output_bytes, too_much), daemon=True),
               threading.Thread(target=_pump, args=(res_r, result, limits.result_bytes, too_much), daemon=True)]
    for t in readers:
        t.start()
    stopped = ""
    deadline = start + limits.wall_seconds
    try:
        while proc.poll() is None:
            if too_much.wait(0.05):
                stopped = f"it printed more than {limits.output_bytes >> 20} MiB (or made more than {limits.result_bytes >> 20} MiB)"
                break
            if time.monotonic() > deadline:
                stopped = f"it ran longer than {limits.wall_seconds:g} s"
                break
    finally:
        kill_group(proc)  # the sandbox's PID namespace ends with bwrap: nothing stays behind
        untrack(proc)
    for t in readers:
        t.join(timeout=10)
    return Ran(None if stopped else proc.returncode, output.text(), bytes(result), time.monotonic() - start, stopped)
