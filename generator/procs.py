"""Child processes that die with us: in their own process group, killed as a group.

QEMU (vm.qemu) and make -j (kernel_build) both fork trees of processes that must
not outlive the command that started them: child_setup() makes each die when we
die (even by SIGKILL), kill_group() ends a whole group on every way out.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:  # looked up here, not in the forked child, where loading a library is unsafe
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not glibc/Linux
    _prctl = None


def child_setup() -> None:
    """preexec_fn: in the child before exec, die with the parent, even if it is SIGKILLed."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group `proc` leads (started with start_new_session) and wait
    for `proc`; idempotent."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in D state
        pass
