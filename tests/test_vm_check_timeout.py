"""The guest's per-check timeout, end to end on both kernels.

A check that outlives `--check-timeout` is killed and reported TIMEOUT while
the run goes on; a check stuck in the kernel (SIGKILL cannot reach it) ends
the run within the limit + ~1 s, with its kernel stack, long before the host's
whole-run timeout.
"""

from __future__ import annotations

import pytest

import test_vm_module
from test_vm_module import new_module, vm_test

series = test_vm_module.series  # its fixture: both kernels, each skipped (or failed in CI) if missing

pytestmark = pytest.mark.slow

HOST_TIMEOUT = 60  # the whole run's limit: a per-check timeout must act long before it


def test_a_user_check_sleeping_in_user_space_is_killed_and_the_run_goes_on(series, tmp_path):
    project = new_module(tmp_path, "sleepy")
    tests = project / "tests"
    tests.mkdir()
    (tests / "a_slow.sh").write_text('ok "before the sleep"\nsleep 100\nok "never reached"\n')
    (tests / "b_after.sh").write_text('expect_read "$ROOT/a" \'5\\n\'\n')
    for script in tests.iterdir():
        script.chmod(0o755)
    code, doc, output = vm_test(project, series, tmp_path, "--timeout", str(HOST_TIMEOUT), "--check-timeout", "2")
    assert code == 5, output
    run = doc["runs"][0]
    statuses = {c["name"]: c["status"] for c in run["checks"]}
    assert statuses["tests/a_slow.sh"] == "timeout", statuses
    assert statuses["tests/b_after.sh"] == "pass" and statuses["rmmod sleepy after tests/"] == "pass", statuses
    assert [s for s in statuses.values() if s not in ("pass", "skip")] == ["timeout"], statuses
    slow = next(c for c in run["checks"] if c["name"] == "tests/a_slow.sh")
    assert 2 <= slow["seconds"] < 6 and "killed after 2 s" in slow["diagnostics"], slow
    assert run["verdict"] == f"timeout: check {len(statuses) - 2} 'tests/a_slow.sh' exceeded its time limit"
    assert run["ended"] != "timeout" and run["vm_seconds"] < HOST_TIMEOUT / 2, run["vm_seconds"]
    print(f"\n{run['kernel']}: sleeping check killed after {slow['seconds']:.2f} s (limit 2 s), VM {run['vm_seconds']:.2f} s")


# Two ways an init never returns, neither of which SIGKILL ends: asleep in D state
# (uninterruptible: the signal waits), and a loop of interruptible sleeps (each
# returns at once with the signal pending, and the loop goes round for ever).
STUCK_INITS = {
    "uninterruptible": "\tssleep(3600);\n",
    "interruptible-loop": "\tfor (;;)\n\t\tmsleep_interruptible(1000);\n",
}


@pytest.mark.parametrize("how", STUCK_INITS)
def test_an_init_stuck_in_the_kernel_ends_the_run_within_the_check_limit(series, how, tmp_path):
    project = new_module(tmp_path, "blocked")
    source = project / "blocked_debugfs.c"
    text = source.read_text()
    text = text.replace("#include <linux/init.h>", "#include <linux/init.h>\n#include <linux/delay.h>", 1)
    text = text.replace("\treturn 0;\n}\n\nstatic void __exit", STUCK_INITS[how] + "\treturn 0;\n}\n\nstatic void __exit", 1)
    assert STUCK_INITS[how] in text
    source.write_text(text)
    logs = tmp_path / "logs"
    code, doc, output = vm_test(project, series, tmp_path, "--timeout", str(HOST_TIMEOUT), "--check-timeout", "3", "--keep-logs", str(logs))
    assert code == 5, output
    run = doc["runs"][0]
    first = run["checks"][0]
    assert first["name"] == "insmod blocked" and first["status"] == "timeout", first
    assert any("is in the module's code; its kernel stack:" in d for d in first["diagnostics"]), first
    assert any("blocked_init" in d and "[blocked]" in d for d in first["diagnostics"]), first  # where it is stuck
    assert run["verdict"] == "timeout: check 1 'insmod blocked' exceeded its time limit"
    results = (logs / "results.log").read_text()
    assert "Bail out! check 1 is stuck in the kernel" in results
    console = (logs / "console.log").read_text()
    assert "dbgscaffold: begin check 1" in console and "dbgscaffold: end check 1" not in console
    # Well before the host's limit: boot + 3 s + ~1 s to give up on SIGKILL + power-off.
    assert run["ended"] == "poweroff" and run["vm_seconds"] < HOST_TIMEOUT / 3, run["vm_seconds"]
    print(f"\n{run['kernel']} ({how}): stuck insmod reported after {first['seconds']:.2f} s, VM {run['vm_seconds']:.2f} s")
