"""Child processes that die with us: in their own process group, killed as a group.

QEMU (vm.qemu) and make -j (kernel_build) both fork trees of processes that must
not outlive the command that started them: child_setup() makes each die when we
die (even by SIGKILL), kill_group() ends a whole group on every way out, and
kill_tracked() ends the tracked ones (make, sandboxes) that threads wait on when
a signal arrives in the main thread; within stopping(), so does track() each new one.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_PR_SET_PDEATHSIG = 1
_PR_SET_THP_DISABLE = 41
_prctl: Callable[..., int] | None
try:  # looked up here, not in the forked child, where loading a library is unsafe
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not glibc/Linux
    _prctl = None


def child_setup() -> None:
    """preexec_fn: in the child before exec, die with the parent, even if it is SIGKILLed."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def vm_child_setup() -> None:
    """preexec_fn for QEMU: child_setup(), and no transparent huge pages for it (kept
    across exec). QEMU asks for them on guest RAM; loading a snapshot then took 0.1 s
    or, one restore in three, 0.3-0.9 s (the 2 MiB faults): without them 0.11-0.13 s."""
    child_setup()
    if _prctl is not None:
        _prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0)


# Process groups started for work a signal should stop at once (make, a sandbox): the
# threads that wait on them are not the main thread, so nothing else would stop them.
_RUNNING: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
_STOPPERS: set[object] = set()  # one token per open stopping() block


def track(proc: subprocess.Popen) -> None:
    with _LOCK:
        _RUNNING.add(proc)
        stop = bool(_STOPPERS)
    if stop:
        _kill(proc)


def untrack(proc: subprocess.Popen) -> None:
    with _LOCK:
        _RUNNING.discard(proc)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tracked() -> None:
    """SIGKILL every tracked group (^C or SIGTERM: the threads waiting on them then return;
    a build killed so is not retried, see kbuild.incremental_build)."""
    with _LOCK:
        procs = list(_RUNNING)
    for proc in procs:
        _kill(proc)


@contextmanager
def stopping() -> Iterator[None]:
    """kill_tracked(), and until the block ends every group tracked from now on as it is
    tracked: for waiting on threads whose work has several steps (a sandboxed build runs
    a few), which would otherwise start the next step after the one that was killed."""
    token = object()  # a token, not a count: a signal before the add leaves nothing behind
    try:
        with _LOCK:
            _STOPPERS.add(token)
        kill_tracked()
        yield
    finally:
        with _LOCK:
            _STOPPERS.discard(token)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group `proc` leads (started with start_new_session) and wait
    for `proc`; idempotent."""
    _kill(proc)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in D state
        pass
