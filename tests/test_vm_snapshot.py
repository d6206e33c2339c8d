"""Snapshot and batch runs on the real kernels: the same verdicts as a fresh boot,
a crash charged to its module only, and a fresh boot whenever the saved guest
does not match the kernel, the initramfs or QEMU (or does not load)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from conftest import qemu_processes, run_cli
from dbgscaffold.runner import execute
from dbgscaffold.runner.checks import warm_up_payload
from dbgscaffold.runner.execute import Prepared, RunOptions, RunRequest, machine_for
from dbgscaffold.runner.model import Status
from dbgscaffold.runner.project import run_tests
from dbgscaffold.vm import images
from dbgscaffold.vm.agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT, agent_initramfs, pack_payload
from dbgscaffold.vm.initramfs import FileSpec
from dbgscaffold.vm.session import AgentVM
from dbgscaffold.vm.snapshot import SnapshotStore, qemu_version, snapshot_key
from test_vm_module import new_module, require_6_1, series  # noqa: F401 - series is a fixture

pytestmark = pytest.mark.slow


def null_deref_module(tmp_path: Path, name: str) -> Path:
    """A module whose string write handler dereferences NULL (check 'subdir/c: replace ...')."""
    project = new_module(tmp_path, name)
    source = project / f"{name}_debugfs.c"
    head, tail = source.read_text().split("static ssize_t textbuf_write", 1)
    tail = tail.replace("struct dbgscaffold_textbuf *tb = file->private_data;", "struct dbgscaffold_textbuf * volatile nullp = NULL;\n\tstruct dbgscaffold_textbuf *tb = nullp;", 1)
    source.write_text(head + "static ssize_t textbuf_write" + tail)
    return project


def verdicts(runs) -> list:
    return [(r.module, r.exit_code, [(c.name, c.status) for c in r.checks]) for r in runs]


def test_snapshot_runs_give_the_verdicts_of_fresh_boots_and_a_crash_costs_only_its_module(series, tmp_path):
    pair = images.pair_for(series)
    broken = null_deref_module(tmp_path, "broken")
    good = new_module(tmp_path / "one", "mydebug")
    again = new_module(tmp_path / "two", "mydebug")  # the same module name: a class's submissions
    projects = [broken, good, again]
    store = SnapshotStore(tmp_path / "snapshots")

    fresh = run_tests(projects, pair, RunOptions(timeout=60, jobs=1, snapshot=False))
    first = run_tests(projects, pair, RunOptions(timeout=60, jobs=1, snapshot=store))  # boots, saves the snapshot
    warm = run_tests(projects, pair, RunOptions(timeout=60, jobs=1, snapshot=store))  # restores it

    assert [r.exit_code for r in fresh] == [6, 0, 0], [r.verdict for r in fresh]
    assert verdicts(first) == verdicts(fresh) and verdicts(warm) == verdicts(fresh)
    crashed = [c for c in warm[0].checks if c.status is Status.CRASHED]
    assert crashed and crashed[0].name == "subdir/c: replace (31 bytes), exact read-back"
    assert "NULL pointer dereference" in crashed[0].crash.title
    assert [r.boot for r in fresh] == ["fresh"] * 3 and "snapshots off" in fresh[0].boot_note
    assert first[0].boot == "fresh" and "saved a snapshot" in first[0].boot_note
    assert [r.boot for r in warm] == ["snapshot"] * 3
    # The crash took its VM down: the next module got a VM of its own (a boot
    # time of its own); the third ran in the second's VM (no boot time).
    assert warm[1].boot_seconds > 0 and warm[2].boot_seconds == 0
    assert warm[1].taint.letters == "OE", "the crash's taint must not follow the next module"
    for r in fresh + first + warm:
        results_socket = next(a for a in r.argv if "results.sock" in a)
        assert qemu_processes(results_socket.split("path=")[1].split(",")[0]) == []


# Result lines carry the payload's token (agent.py): run.sh is sourced with it in $_dbgs_tag.
ALIVE = FileSpec(PAYLOAD_SCRIPT, b"t=$_dbgs_tag\necho \"${t}KTAP version 1\" >&3\necho \"${t}1..1\" >&3\necho \"${t}ok 1 alive $(uname -r)\" >&3\n",
                 0o755)


def boot_and_run(machine, store: SnapshotStore):
    """Start a VM (restore or boot), run a one-line payload; the BootInfo."""
    with AgentVM(machine, store) as vm:
        boot = vm.start(timeout=60)
        pr = vm.run(pack_payload([ALIVE]), timeout=30)
    assert pr.done is not None and "ok 1 alive" in pr.result.results, pr.result.console[-2000:]
    return boot


def test_a_snapshot_that_does_not_match_kernel_initramfs_or_qemu_is_not_used(tmp_path):
    require_6_1()
    pair = images.pair_for("6.1")
    machine = machine_for(pair, "tcg").machine
    store = SnapshotStore(tmp_path / "snapshots")

    made = boot_and_run(machine, store)
    assert made.kind == "fresh" and "saved a snapshot" in made.note, made.note
    [state] = store.root.glob("*.state")
    restored = boot_and_run(machine, store)
    assert restored.kind == "snapshot" and restored.seconds < made.seconds

    # Another QEMU build (a wrapper reporting another version): no snapshot for it.
    wrapper = tmp_path / "qemu-wrapper"
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = --version ] && {{ echo "QEMU emulator version 99.0"; exit 0; }}\nexec {shutil.which("qemu-system-x86_64")} "$@"\n')
    wrapper.chmod(0o755)
    other_qemu = boot_and_run(replace(machine, qemu=str(wrapper)), store)
    assert other_qemu.kind == "fresh" and other_qemu.note.startswith("no snapshot for this kernel, initramfs and QEMU"), other_qemu.note

    # Another kernel file (a rebuilt or upgraded image has another size or mtime).
    kernel = tmp_path / "vmlinux"
    shutil.copyfile(machine.kernel, kernel)
    assert boot_and_run(replace(machine, kernel=kernel), store).kind == "fresh"

    # Another initramfs (the agent or its check library changed).
    initrd = agent_initramfs(FileSpec("/checks/ktap.sh", b"# another library\n", 0o644), cache=tmp_path / "cache")
    assert boot_and_run(replace(machine, initrd=initrd), store).kind == "fresh"

    # The original still restores; then a damaged state: discarded, a fresh boot, saved anew.
    assert boot_and_run(machine, store).kind == "snapshot"
    assert state.stat().st_size > 1 << 20
    with open(state, "r+b") as f:
        f.truncate(4096)
    damaged = boot_and_run(machine, store)
    assert damaged.kind == "fresh" and "did not load" in damaged.note and "saved a snapshot" in damaged.note, damaged.note
    assert boot_and_run(machine, store).kind == "snapshot"


# Crashes the kernel once the agent empties the payload root for the next payload.
TRIPWIRE = FileSpec(PAYLOAD_SCRIPT, b"(while [ -e /run/payload/run.sh ]; do :; done; echo c > /proc/sysrq-trigger) </dev/null >/dev/null 2>&1 &\n",
                    0o755)
# The same, for the payload after the next (the first after a warm-up).
TRIPWIRE_AFTER_WARM_UP = FileSpec(PAYLOAD_SCRIPT, b"(while [ -e /run/payload/run.sh ]; do :; done; while [ ! -e /run/payload/run.sh ]; do :; done; "
                                  b"while [ -e /run/payload/run.sh ]; do :; done; echo c > /proc/sysrq-trigger) </dev/null >/dev/null 2>&1 &\n", 0o755)


@pytest.mark.parametrize("warm_up", [False, True], ids=["first-payload", "after-a-warm-up"])
def test_a_restored_guest_that_dies_before_the_payload_begins_is_replaced_by_a_fresh_boot(tmp_path, warm_up):
    """Seen in CI on 6.12, rarely: a restored guest oopsed in interrupt context before the
    payload arrived, and the module was charged with the crash. Here a snapshot is saved
    with a guest process armed to crash the kernel as the next payload comes in (or the
    one after a warm-up, which loads no module either)."""
    require_6_1()
    machine = machine_for(images.pair_for("6.1"), "tcg").machine
    store = SnapshotStore(tmp_path / "snapshots")
    version = qemu_version(machine.qemu)
    with AgentVM(machine, store, save_snapshot=False) as vm:
        key = snapshot_key(vm.machine, version)
        assert vm.start(timeout=60).kind == "fresh"
        assert vm.run(pack_payload([TRIPWIRE_AFTER_WARM_UP if warm_up else TRIPWIRE]), timeout=30).done is not None
        assert "saved a snapshot" in vm.save(key, version)
    filler = FileSpec(f"{PAYLOAD_ROOT}/filler", os.urandom(1 << 20), 0o644)  # incompressible: the crash comes while it arrives
    with AgentVM(machine, store) as vm:
        restored = vm.start(timeout=60)
        assert restored.kind == "snapshot", restored.note
        if warm_up:
            vm.warm_up(warm_up_payload(), timeout=30)
            assert vm.boot is not None and vm.boot.kind == "snapshot", "the warm-up itself came through"
        run = vm.run(pack_payload([ALIVE, filler]), timeout=60)
    assert run.done is not None and "ok 1 alive" in run.result.results, run.result.console[-2000:]
    assert run.boot.kind == "fresh" and run.boot.note.startswith("the restored guest died before the payload's first check began"), run.boot.note
    assert "(Kernel panic - not syncing: sysrq triggered crash)" in run.boot.note, "the note says how the restored guest died"
    assert store.find(key) is None, "the snapshot that broke is discarded"


def test_a_warm_up_goes_before_the_first_payload_and_one_that_leaves_the_guest_unclean_means_a_fresh_boot(tmp_path):
    require_6_1()
    machine = machine_for(images.pair_for("6.1"), "tcg").machine
    store = SnapshotStore(tmp_path / "snapshots")
    assert boot_and_run(machine, store).kind == "fresh"
    with AgentVM(machine, store, workdir=tmp_path / "logs") as vm:
        assert vm.start(timeout=60).kind == "snapshot"
        vm.warm_up(warm_up_payload(), timeout=30)
        pr = vm.run(pack_payload([ALIVE]), timeout=30)
    assert pr.done is not None and "ok 1 alive" in pr.result.results, pr.result.console[-2000:]
    assert pr.boot.kind == "snapshot" and pr.result.boot_seconds and pr.result.boot_seconds > 0, "the restore is reported with the first real payload"
    logged = (tmp_path / "logs" / "console.log").read_text()
    assert "begin payload 1" in logged and "begin payload 2" in logged, "console.log keeps the resume and the warm-up"
    assert "begin payload 1" not in pr.result.console and "begin payload 2" in pr.result.console, "the verdict is judged on its own payload"

    leaves_a_process = pack_payload([FileSpec(PAYLOAD_SCRIPT, b"sleep 1000 </dev/null >/dev/null 2>&1 &\n", 0o755)])
    with AgentVM(machine, store, workdir=tmp_path / "replaced") as vm:
        key = snapshot_key(vm.machine, qemu_version(machine.qemu))
        assert vm.start(timeout=60).kind == "snapshot"
        vm.warm_up(leaves_a_process, timeout=30)
        assert vm.boot is not None and vm.boot.kind == "fresh", vm.boot
        assert vm.boot.note.startswith("the restored guest failed a warm-up"), vm.boot.note
        assert store.find(key) is None, "the snapshot that failed is discarded"
        pr = vm.run(pack_payload([ALIVE]), timeout=30)
    assert pr.done is not None and pr.done.processes_left == 0 and "ok 1 alive" in pr.result.results
    logged = (tmp_path / "replaced" / "console.log").read_text()
    assert logged.index("begin payload 1") < logged.index("a warm-up that loads nothing: a fresh boot") < logged.rindex("begin payload 1"), \
        "console.log keeps the replaced guest's console, then the fresh one's"


def test_a_restored_guest_dying_after_its_payload_began_but_before_a_check_gets_a_fresh_boot_then_the_verdict(tmp_path):
    """Before the first check nothing of a module runs (the first check loads it): a death
    there is retried on a fresh boot; dying again there, it is the payload's own verdict."""
    require_6_1()
    machine = machine_for(images.pair_for("6.1"), "tcg").machine
    store = SnapshotStore(tmp_path / "snapshots")
    assert boot_and_run(machine, store).kind == "fresh"
    crashes = FileSpec(PAYLOAD_SCRIPT, b"echo c > /proc/sysrq-trigger\n", 0o755)
    with AgentVM(machine, store) as vm:
        assert vm.start(timeout=60).kind == "snapshot"
        run = vm.run(pack_payload([crashes]), timeout=60)
    assert run.done is None and "sysrq" in run.result.console.lower(), run.result.console[-2000:]
    assert run.boot.kind == "fresh" and run.boot.note.startswith("the restored guest died before the payload's first check began"), run.boot.note
    assert "(Kernel panic - not syncing: sysrq triggered crash)" in run.boot.note, "the note says how the first guest died"


@dataclass(frozen=True)
class SlowBuild:
    """Checks whose build takes `seconds`: the ALIVE payload."""

    seconds: float

    def prepare(self, project, pair, workdir, check_timeout) -> Prepared:
        time.sleep(self.seconds)
        return Prepared("alive", ("alive",), pack_payload([ALIVE]), self.seconds, 0.0)


def test_a_restored_guest_is_warmed_up_only_while_the_build_still_runs(tmp_path):
    require_6_1()
    pair = images.pair_for("6.1")
    store = SnapshotStore(tmp_path / "snapshots")
    consoles = {}
    for seconds in (0.0, 1.5, 0.0):  # the first boots fresh and saves the snapshot
        logs = tmp_path / f"logs-{seconds}"
        [(run, _)] = execute.run([RunRequest("alive", tmp_path, SlowBuild(seconds))], pair,
                                 RunOptions(accel="tcg", snapshot=store, keep_logs=logs))
        assert run.exit_code == 0, run.verdict
        consoles[seconds] = (run.boot, (logs / "console.log").read_text())
    assert consoles[1.5][0] == "snapshot" and "begin payload 2" in consoles[1.5][1], "warmed up while the build ran"
    assert consoles[0.0][0] == "snapshot" and "begin payload 1" in consoles[0.0][1] and "begin payload 2" not in consoles[0.0][1], \
        "no warm-up when the build is done: it would only delay the payload"


def test_test_takes_several_directories_and_streams_ktap(tmp_path):
    require_6_1()
    good = new_module(tmp_path, "mydebug")
    other = new_module(tmp_path, "other")
    report = tmp_path / "r.json"
    r = run_cli("test", str(good), str(other), "--kernel", "6.1", "--json", str(report))
    assert r.exit_code == 0, r.output
    assert "mydebug on 6.1" in r.stdout and "other on 6.1" in r.stdout
    r = run_cli("test", str(good), "--kernel", "6.1", "--ktap")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: mydebug on 6.1"), r.stdout[:300]
    assert r.stdout.endswith("\nok 1 mydebug on " + r.stdout.split("# Subtest: mydebug on ", 1)[1].split("\n", 1)[0] + "\n")
    assert "pass: 21 checks" in r.stderr and "pass: 21 checks" not in r.stdout, "stdout is the KTAP document alone"
