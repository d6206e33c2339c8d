"""execute.run when the run cannot go on: the builds it started stop, every step of them."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import require_tools
from dbgscaffold import procs
from dbgscaffold.runner import execute
from dbgscaffold.runner.execute import RunOptions, RunRequest
from dbgscaffold.vm.images import KernelPair


@dataclass(frozen=True)
class TwoStepBuild:
    """A build of two tracked steps (as a sandboxed one runs several): a long one, then
    one that leaves a mark after a second. `started` appears once the first is tracked."""

    started: Path
    second: Path

    def prepare(self, project, pair, workdir, check_timeout):
        for n, argv in enumerate((["sleep", "60"], ["sh", "-c", f"sleep 1; touch {self.second}"])):
            with subprocess.Popen(argv, start_new_session=True) as proc:
                procs.track(proc)
                if n == 0:
                    self.started.touch()
                try:
                    proc.wait()
                finally:
                    procs.untrack(proc)


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared: the build did not start"
        time.sleep(0.01)


def run_and_fail(tmp_path: Path, break_it) -> tuple[BaseException, float, Path]:
    """execute.run of one TwoStepBuild, broken by `break_it(started)` once the build's first
    step runs; (what it raised, how long it took, the second step's mark)."""
    require_tools("qemu-system-x86_64")
    started, second = tmp_path / "first-step-started", tmp_path / "second-step-ran"
    break_it(started)
    pair = KernelPair("6.1.0-0-none", tmp_path / "vmlinuz-missing", tmp_path / "build")
    start = time.monotonic()
    with pytest.raises(Exception) as raised:
        execute.run([RunRequest("two-steps", tmp_path, TwoStepBuild(started, second))], pair,
                    RunOptions(accel="tcg", snapshot=False))
    return raised.value, time.monotonic() - start, second


def test_a_run_whose_vm_cannot_be_set_up_stops_every_step_of_the_builds_it_started(tmp_path, monkeypatch):
    """Found by a review: the setup failing (here: no kernel image) killed only the step
    running at that moment, and the run then waited for the build's next steps."""
    real = execute.machine_for

    def break_it(started: Path) -> None:
        def machine_for(*args, **kwargs):
            wait_for(started)  # the build is under way: now the setup fails
            return real(*args, **kwargs)
        monkeypatch.setattr(execute, "machine_for", machine_for)

    raised, seconds, second = run_and_fail(tmp_path, break_it)
    assert "vmlinuz-missing" in str(raised), raised
    assert seconds < 30, "the first step (sleep 60) was not stopped"
    assert not second.exists(), "the build's next step ran after the run had failed"  # run() waits for its builds


def test_a_run_whose_vm_does_not_start_stops_every_step_of_the_builds_still_going(tmp_path, monkeypatch):
    """The same when a worker fails (its VM does not start): the run ends at once."""

    def break_it(started: Path) -> None:
        class NoVM:
            def __init__(self, *args, **kwargs):
                pass

            def start(self, timeout):
                wait_for(started)  # the build is under way: now the VM fails
                raise RuntimeError("no VM in this test")

            def finish(self):
                pass

        monkeypatch.setattr(execute, "machine_for", lambda *a, **k: execute.GuestSetup(None, None, "pvh-elf"))
        monkeypatch.setattr(execute, "kernel_dwarf", lambda pair: None)
        monkeypatch.setattr(execute, "AgentVM", NoVM)

    raised, seconds, second = run_and_fail(tmp_path, break_it)
    assert "no VM in this test" in str(raised), raised
    assert seconds < 30, "the first step (sleep 60) was not stopped"
    assert not second.exists(), "the build's next step ran after the run had failed"
