"""The guest agent's payloads and the snapshot key and store (pure and filesystem; no VM)."""

from __future__ import annotations

import gzip
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dbgscaffold.vm import agent
from dbgscaffold.vm.initramfs import FileSpec, read_newc
from dbgscaffold.vm.qemu import AGENT_PORT, CONSOLE, Machine, fast_machine
from dbgscaffold.vm.snapshot import SnapshotStore, snapshot_key


def test_a_payload_is_a_gzipped_newc_of_the_files_relative_to_the_payload_root():
    files = [
        FileSpec(f"{agent.PAYLOAD_ROOT}/m.ko", b"\x7fELF" + bytes(range(256)), 0o644),
        FileSpec(agent.PAYLOAD_SCRIPT, b"echo hi\n", 0o755),
        FileSpec(f"{agent.PAYLOAD_ROOT}/user/10-x.sh", b"ok x\n", 0o755),
    ]
    data = agent.pack_payload(files)
    members = read_newc(gzip.decompress(data))
    assert [(m.path, m.kind, m.mode) for m in members] == [
        ("m.ko", "file", 0o644), ("run.sh", "file", 0o755), ("user", "dir", 0o755), ("user/10-x.sh", "file", 0o755),
    ]
    assert members[0].data == files[0].data
    assert agent.pack_payload(files) == data, "the same files must give the same bytes"
    assert agent.payload_message(data, "t0k") == f"payload {len(data)} t0k\n".encode() + data


def test_a_payload_file_outside_the_payload_root_is_refused():
    with pytest.raises(ValueError, match="live under /run/payload/"):
        agent.pack_payload([FileSpec("/lib/modules/m.ko", b"x")])


def test_the_done_line_is_parsed_and_anything_else_is_not():
    assert agent.parse_done("# dbgscaffold: done 3 0 12288 0\r") == agent.Done(3, 0, 12288, 0)
    assert agent.parse_done("# dbgscaffold: done 3 0 12288 2").processes_left == 2
    assert agent.parse_done("# dbgscaffold: done 3 0 12288") is None
    assert agent.parse_done("ok 1 done 3 0 1") is None


def test_a_result_line_counts_only_with_this_payloads_token():
    token = agent.new_token()
    assert len(token) == 32 and token != agent.new_token()
    assert agent.untag(f"{token} ok 1 a", token) == ("ok 1 a", "")
    assert agent.untag(f"{token}   ok 1 sub", token) == ("  ok 1 sub", "")  # a subtest keeps its indent
    assert agent.untag("ok 1 a", token) == (None, "ok 1 a")  # a module's forged line
    assert agent.untag(f"{token[:-1]} ok 1 a", token)[0] is None
    # a fragment a module wrote without a newline glues onto our next line: it stays ours
    assert agent.untag(f"ok 9 x{token} not ok 1 a", token) == ("not ok 1 a", "ok 9 x")
    assert agent.untag(" ok 1 a", "") == (None, " ok 1 a")  # no token, no results


def test_the_agent_reads_payloads_with_dd_fullblock_never_through_stdio():
    script = agent.agent_script()
    assert "iflag=fullblock" in script and "head -c" not in script
    assert script.index(f"echo '{agent.READY}'") < script.index("while read")


def machine(tmp_path: Path, **changes) -> Machine:
    kernel = tmp_path / "vmlinux"
    initrd = tmp_path / "initrd.cpio"
    for p in (kernel, initrd):
        if not p.exists():
            p.write_bytes(b"x" * 100)
    return replace(fast_machine(kernel, initrd, tsc_khz=2_000_000), serial=(CONSOLE, AGENT_PORT), **changes)


def test_the_snapshot_key_ignores_run_specific_paths_but_not_what_the_state_depends_on(tmp_path):
    base = machine(tmp_path)
    key = snapshot_key(base, "QEMU emulator version 7.2.22")
    same = replace(base, serial=(CONSOLE, replace(AGENT_PORT, path="/tmp/x/results.sock")), qmp="/tmp/x/qmp.sock",
                   incoming="exec:cat /tmp/x.state")
    assert snapshot_key(same, "QEMU emulator version 7.2.22") == key
    assert snapshot_key(base, "QEMU emulator version 8.2.0") != key
    assert snapshot_key(replace(base, memory_mb=512), "QEMU emulator version 7.2.22") != key
    assert snapshot_key(replace(base, append=base.append + ("foo",)), "QEMU emulator version 7.2.22") != key
    (tmp_path / "initrd.cpio").write_bytes(b"y" * 101)  # a new initramfs at the same path
    assert snapshot_key(base, "QEMU emulator version 7.2.22") != key
    other_kernel = tmp_path / "vmlinux2"
    other_kernel.write_bytes(b"x" * 100)
    assert snapshot_key(replace(base, kernel=other_kernel), "QEMU emulator version 7.2.22") != key


def test_the_store_finds_only_complete_snapshots_and_keeps_the_most_recent(tmp_path):
    store = SnapshotStore(tmp_path / "snaps", keep=2)
    m = machine(tmp_path)
    tmp = store.temporary("k1")
    tmp.write_bytes(b"state")
    assert store.find("k1") is None, "a state still being written is not a snapshot"
    info = store.commit("k1", tmp, m, "QEMU 7.2", 0.4)
    assert store.find("k1") == store.state("k1") and info.size == 5
    assert json.loads(store.meta("k1").read_text())["qemu_version"] == "QEMU 7.2"
    store.state("k1").unlink()
    assert store.find("k1") is None, "metadata without its state is not a snapshot"
    store.prune()
    assert store.meta("k1").exists(), "a young half may be a commit in progress"
    os.utime(store.meta("k1"), (time.time() - 120,) * 2)
    for key in ("a", "b", "c"):
        t = store.temporary(key)
        t.write_bytes(b"s")
        store.commit(key, t, m, "QEMU 7.2", 0.1)
        past = time.time() - {"a": 300, "b": 200, "c": 0}[key]
        os.utime(store.meta(key), (past, past))
    store.prune()
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == ["b.json", "b.state", "c.json", "c.state"]
    store.discard("b")
    assert store.find("b") is None and not store.state("b").exists()


def test_shared_guest_files_go_into_the_agent_initramfs_but_never_under_the_payload_root(tmp_path):
    from conftest import require
    from dbgscaffold.vm.initramfs import BUSYBOX

    require(BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    lib = FileSpec("/checks/ktap.sh", b"# lib\n", 0o644)
    staprun = FileSpec("/opt/stap/staprun", b"\x7fELF...", 0o755)
    path = agent.agent_initramfs(lib, [staprun], cache=tmp_path)
    members = {m.path: m for m in read_newc(path.read_bytes())}
    assert members["opt/stap/staprun"].data == staprun.data and members["opt/stap/staprun"].mode == 0o755
    assert agent.agent_initramfs(lib, cache=tmp_path) != path, "other files, another (content-addressed) initramfs"
    with pytest.raises(ValueError, match="emptied for every payload"):
        agent.agent_initramfs(lib, [FileSpec(f"{agent.PAYLOAD_ROOT}/staprun", b"x")], cache=tmp_path)


def test_a_results_line_without_end_is_cut_and_the_next_line_still_arrives():
    """A module can write to the results port forever without a newline: the host keeps
    at most LINE_MAX of it a line (the rest may be dropped), and what follows is read as usual."""
    import socket
    import time

    from dbgscaffold.vm import session

    ours, theirs = socket.socketpair()
    lines = session._Lines(ours)
    theirs.sendall(b"x" * (3 * session.LINE_MAX) + b"\nok 1 after\n")
    theirs.close()
    got = []
    deadline = time.monotonic() + 10
    while (line := lines.get(deadline)) is not None:
        got.append(line)
    assert max(map(len, got)) <= session.LINE_MAX and got[-1] == "ok 1 after", [len(x) for x in got]
    assert got[:-1] and all(set(x) == {"x"} for x in got[:-1])  # the endless line's pieces (some dropped), nothing more


def test_a_payload_is_judged_on_the_console_from_the_line_it_began():
    from dbgscaffold.vm.session import died_before_a_check, payload_console

    console = "[ 5.1] WARNING: a starved guest\n[ 5.2] dbgscaffold: begin payload 1\n[ 5.3] mine\n"
    assert payload_console(console) == "[ 5.2] dbgscaffold: begin payload 1\n[ 5.3] mine\n"
    assert payload_console("[ 5.1] BUG: before anything\n") == "[ 5.1] BUG: before anything\n"
    assert died_before_a_check(b"[ 5.1] BUG: before anything\n") and died_before_a_check(console.encode())
    assert not died_before_a_check(f"{console}[ 5.4] dbgscaffold: begin check 1\n[ 5.5] BUG: in the module\n".encode())

