"""execute.run when the run cannot happen: the builds it started stop, every step of them."""

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
    one that leaves a mark after a second."""

    mark: Path

    def prepare(self, project, pair, workdir, check_timeout):
        for argv in (["sleep", "60"], ["sh", "-c", f"sleep 1; touch {self.mark}"]):
            with subprocess.Popen(argv, start_new_session=True) as proc:
                procs.track(proc)
                try:
                    proc.wait()
                finally:
                    procs.untrack(proc)
        raise AssertionError("a build whose steps were stopped went on")


def test_a_run_whose_vm_cannot_be_set_up_stops_every_step_of_the_builds_it_started(tmp_path):
    """Found by a review: the setup failing (here: no kernel image) used to kill only the
    step running at that moment, and the run then waited for the build's next steps."""
    require_tools("qemu-system-x86_64")
    pair = KernelPair("6.1.0-0-none", tmp_path / "vmlinuz-missing", tmp_path / "build")
    mark = tmp_path / "second-step-ran"
    start = time.monotonic()
    with pytest.raises(Exception) as raised:
        execute.run([RunRequest("two-steps", tmp_path, TwoStepBuild(mark))], pair, RunOptions(accel="tcg", snapshot=False))
    assert "vmlinuz-missing" in str(raised.value), raised.value
    assert time.monotonic() - start < 30, "the first step (sleep 60) was not stopped"
    time.sleep(1.5)
    assert not mark.exists(), "the build's next step ran after the run had failed"
