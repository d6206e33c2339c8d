"""runner.checks: the guest check script derived from a spec, and its shell library.

The helpers run here under the host's static busybox (the guest's shell), on
plain files, so each is shown to pass on the right answer and fail on a wrong one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import require
from dbgscaffold.runner import checks
from dbgscaffold.spec import parse_spec
from dbgscaffold.vm.initramfs import BUSYBOX


def rp(spec, ko: str, **kw) -> checks.RunPlan:
    """The RunPlan of a generated project's one module at guest path `ko`."""
    return checks.RunPlan((checks.GuestModule(spec.module.name, ko),), spec, **kw)

SPECS = Path(__file__).resolve().parent.parent / "generator" / "specs"


def classic():
    return parse_spec((SPECS / "classic.toml").read_text(), name_override="mydebug")


def example():
    return parse_spec((SPECS / "example.toml").read_text())


# `poweroff -f` ends every guest process; here: a mark, the main shell killed, and
# the caller (the watchdog, when a check is stuck) gone too.
FAKE_POWEROFF = '_poweroff() { echo off > "$DBGS_TMP/poweroff"; kill -KILL $$; exit 99; }'
POWERED_OFF = -9  # the main shell's exit status after _poweroff


def ash(script: str, tmp_path: Path) -> tuple[int, str, str]:
    """Run `script` under busybox ash with the guest library at hand; fd 3 -> a file."""
    require(BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    lib = tmp_path / "ktap.sh"
    lib.write_text(checks.guest_library())
    out = tmp_path / "fd3"
    proc = subprocess.run(
        [str(BUSYBOX), "sh", "-c", f"exec 3>{out}\n. {lib}\n{FAKE_POWEROFF}\n{script}\n"],
        capture_output=True, text=True, cwd=tmp_path, timeout=30,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "DBGS_TMP": str(tmp_path), "DBGS_KMSG": str(tmp_path / "kmsg"), "DBGS_POWEROFF": "_poweroff"},
    )
    return proc.returncode, out.read_text() if out.exists() else "", proc.stderr


def test_printf_format_round_trips_every_byte(tmp_path):
    data = bytes(range(256)) + b"%s%%\\'\"$(reboot)`x`"
    fmt = checks.printf_format(data)
    assert fmt.startswith("'") and fmt.endswith("'") and "'" not in fmt[1:-1] and "%" not in fmt
    require(BUSYBOX.is_file(), "static busybox")
    got = subprocess.run([str(BUSYBOX), "sh", "-c", f"printf {fmt}"], capture_output=True, timeout=10).stdout
    assert got == data


def test_classic_plan_on_6_1_and_6_12():
    names61 = [c.name for c in checks.plan(rp(classic(), "/lib/modules/mydebug.ko"), (6, 1, 0))]
    names612 = [c.name for c in checks.plan(rp(classic(), "/lib/modules/mydebug.ko"), (6, 12, 0))]
    assert names61[0] == "insmod mydebug"
    assert names61[-3:] == ["rmmod mydebug", "/sys/kernel/debug/mydebug is gone after rmmod", "load/unload x3"]
    for n in ("a: exists", "a: mode 644", "a: reads its initial value", "a: write 0, read it back",
              "a: write 255, read it back", "a: a garbage write is rejected", "b: mode 444",
              "subdir/c: replace (31 bytes), exact read-back", "subdir/c: a 32-byte write is rejected (ENOSPC)",
              "subdir/c: an empty write changes nothing", "subdir: directory exists"):
        assert n in names61 and n in names612, n
    assert "b: a write is rejected even for root (read-only)" in names61
    assert "b: write rejection not checked" in names612 and "b: a write is rejected even for root (read-only)" not in names612


def test_blob_with_a_write_mode_depends_on_the_kernel():
    spec = parse_spec('[module]\nname = "blobby"\n[[entry]]\npath = "b"\ntype = "blob"\nmode = "0644"\nvalue = "hi\\n"\n')
    b = spec.entries[0]
    assert b.kind.shown_mode(b, (6, 1, 0)) == "444" and not b.kind.writable(b, (6, 1, 0))
    assert b.kind.shown_mode(b, (6, 12, 0)) == "644" and b.kind.writable(b, (6, 12, 0))
    n61 = [c.name for c in checks.plan(rp(spec, "/x.ko"), (6, 1, 0))]
    n612 = [c.name for c in checks.plan(rp(spec, "/x.ko"), (6, 12, 0))]
    assert "b: a write is rejected even for root (before 6.8 a blob is read-only)" in n61
    assert "b: writing its own bytes back works" in n612


def test_initial_values_in_the_kernels_format():
    spec = example()
    bodies = {c.name: c.body for c in checks.plan(rp(spec, "/x.ko"), (6, 12, 0))}
    reads = {name.split(":")[0]: body for name, body in bodies.items() if name.endswith("reads its initial value")}
    by_type = {e.type.name: e for e in spec.entries}
    for e in by_type.values():
        if e.path in reads:
            want = e.kind.reads(e, (6, 12))
            assert checks.printf_format(want) in reads[e.path]
    if "x8" in by_type:
        assert by_type["x8"].kind.reads(by_type["x8"], (6, 12)) == b"0x%02x\n" % int(by_type["x8"].value or 0)
    if "bool" in by_type:
        assert by_type["bool"].kind.reads(by_type["bool"], (6, 12)) in (b"Y\n", b"N\n")


def test_u32_array_reads_padded_with_zeros():
    spec = parse_spec('[module]\nname = "arr"\n[[entry]]\npath = "v"\ntype = "u32_array"\nvalue = [1, 2, 3]\nlength = 4\n')
    assert spec.entries[0].kind.reads(spec.entries[0], (6, 1)) == b"1 2 3 0\n"


@pytest.mark.parametrize("version", [(6, 1, 0), (6, 12, 0)])
def test_generated_scripts_are_valid_ash(version, tmp_path):
    require(BUSYBOX.is_file(), "static busybox")
    for spec in (classic(), example()):
        text = checks.script(rp(spec, "/lib/modules/m.ko", user_scripts=("/checks/user/mine.sh",)), version)
        path = tmp_path / "run.sh"
        path.write_text(text)
        proc = subprocess.run([str(BUSYBOX), "sh", "-n", str(path)], capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0, proc.stderr
        assert "_dbgs_res '1..{}'".format(len(checks.plan(rp(spec, "/lib/modules/m.ko", user_scripts=("/checks/user/mine.sh",)), version))) in text
        assert "run_user_check" in text


def test_same_passes_on_the_right_bytes_and_fails_on_wrong_ones(tmp_path):
    (tmp_path / "f").write_bytes(b"0x05\n")
    assert ash("same f '0x05\\n'", tmp_path)[0] == 0
    rc, fd3, _ = ash("same f '0x06\\n'", tmp_path)
    assert rc != 0 and "# read:" in fd3 and "# expected:" in fd3
    assert ash("same f '0x05'", tmp_path)[0] != 0  # a missing newline is a difference
    assert ash("same missing '0x05\\n'", tmp_path)[0] != 0


def test_put_fails_and_mode_is(tmp_path):
    (tmp_path / "f").write_text("")
    (tmp_path / "f").chmod(0o640)
    assert ash("put_ok f 'abc' && same f 'abc'", tmp_path)[0] == 0
    rc, fd3, _ = ash("put_fails f 'abc'", tmp_path)  # the write works: put_fails must fail
    assert rc != 0 and "succeeded; it should fail" in fd3
    assert ash("put_fails nodir/f 'abc' 'No such file'", tmp_path)[0] == 0
    assert ash("put_fails nodir/f 'abc' 'No space left'", tmp_path)[0] != 0
    assert ash("mode_is f 640", tmp_path)[0] == 0
    assert ash("mode_is f 644", tmp_path)[0] != 0


def test_user_helpers_speak_ktap(tmp_path):
    rc, fd3, _ = ash("ok 'first'; not_ok 'second' 'why'; skip 'third' 'no reason'", tmp_path)
    assert fd3.splitlines() == ["ok 1 first", "# why", "not ok 2 second", "ok 3 third # SKIP no reason"]


def test_user_checks_are_the_executable_scripts(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    for name, mode in (("b.sh", 0o755), ("a.sh", 0o755), ("notes.sh", 0o644), ("c.txt", 0o755)):
        (tests / name).write_text("ok x\n")
        (tests / name).chmod(mode)
    assert [p.name for p in checks.user_checks(tmp_path)] == ["a.sh", "b.sh"]
    assert checks.user_checks(tmp_path / "nope") == []



# ------------------------------------------------------------- the per-check timeout


def test_script_exports_the_per_check_limit_in_whole_seconds():
    text = checks.script(rp(classic(), "/m.ko"), (6, 1, 0), check_timeout=3.2)
    assert "DBGS_CHECK_TIMEOUT=4\nexport DBGS_CHECK_TIMEOUT\n" in text
    assert text.index("DBGS_CHECK_TIMEOUT=4") < text.index("run_check 1 ")
    assert "DBGS_CHECK_TIMEOUT" not in checks.script(rp(classic(), "/m.ko"), (6, 1, 0))
    assert [checks.guest_timeout(x) for x in (0.2, 1, 1.0001, 20.0)] == [1, 1, 2, 20]
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError):
            checks.guest_timeout(bad)


def _run_checks(tmp_path: Path, limit: int, bodies: dict[str, str], prelude: str = "") -> tuple[int, str, float]:
    """run_check on each body in order under DBGS_CHECK_TIMEOUT=limit: (exit, fd 3, seconds)."""
    import time

    lines = [f"DBGS_CHECK_TIMEOUT={limit}", prelude]
    for n, (name, body) in enumerate(bodies.items(), 1):
        lines += [f"check_{n}() {{ {body}; }}", f"run_check {n} '{name}' check_{n}"]
    lines.append("checks_done")
    t0 = time.monotonic()
    rc, fd3, err = ash("\n".join(lines), tmp_path)
    return rc, fd3, time.monotonic() - t0


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_a_check_past_its_limit_is_killed_with_its_children_and_the_next_runs(tmp_path):
    pids = tmp_path / "pids"
    slow = f"sleep 300 & echo $! >> {pids}; sh -c 'echo $$ >> {pids}; exec sleep 300'"
    rc, fd3, took = _run_checks(tmp_path, 1, {"slow": slow, "next": "true", "skipped": "exit 4", "failing": "exit 1"})
    assert rc == 0 and took < 5, (took, fd3)
    assert fd3.splitlines()[1:3] == ["# killed after 1 s", "not ok 1 slow # TIMEOUT per-check limit 1 s"], fd3
    assert "ok 2 next\n" in fd3 and "ok 3 skipped # SKIP\n" in fd3 and "not ok 4 failing\n" in fd3
    started = [int(x) for x in pids.read_text().split()]
    assert len(started) == 2 and all(_gone(p) for p in started), started  # the grandchildren too
    kmsg = (tmp_path / "kmsg").read_text()  # a file here: the last line written
    assert kmsg == "dbgscaffold: end check 4\n"


def test_a_check_within_its_limit_does_not_wait_for_the_watchdog(tmp_path):
    rc, fd3, took = _run_checks(tmp_path, 30, {f"quick {i}": "true" for i in range(5)})
    assert rc == 0 and took < 5 and fd3.count("\nok ") == 5 and fd3.startswith("# uptime:"), fd3
    assert "TIMEOUT" not in fd3 and "killed" not in fd3


def test_one_watchdog_serves_the_run_and_leaves_with_it(tmp_path):
    """checks_done stops the watchdog; a run that ends without it (killed, or a
    script that exits early) does not leave it behind for the next payload."""
    import time

    marker = tmp_path / "wd"
    spy = f"echo $DBGS_WD >> {marker}"
    rc, fd3, _ = _run_checks(tmp_path, 30, {"one": spy, "two": spy})
    pids = marker.read_text().split()
    assert rc == 0 and len(pids) == 2 and pids[0] == pids[1] and pids[0].isdigit(), (pids, fd3)
    assert _gone(int(pids[0]))
    # no checks_done: the run's shell exits with the watchdog still waiting
    marker.unlink()
    rc, _, err = ash(f"DBGS_CHECK_TIMEOUT=30\ncheck_1() {{ {spy}; }}\nrun_check 1 one check_1\nexit 3", tmp_path)
    assert rc == 3, err
    [pid] = marker.read_text().split()
    deadline = time.monotonic() + 6
    while not _gone(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(int(pid)), "the watchdog outlived its run"


def test_a_check_in_module_code_gets_no_signal_and_bails_out(tmp_path):
    """A task whose kernel stack has a module frame (`_in_module`, faked here) is not
    signalled: a pending signal can make an interruptible sleep loop spin."""
    import os
    import signal

    pids = tmp_path / "pids"
    rc, fd3, took = _run_checks(tmp_path, 1, {"in module": f"exec >/dev/null 2>&1; sleep 300 & echo $! > {pids}; wait"}, prelude="_in_module() { return 0; }")
    sleeper = int(pids.read_text())
    try:
        assert rc == POWERED_OFF and (tmp_path / "poweroff").is_file() and "is in the module's code; its kernel stack:" in fd3, fd3
        assert fd3.rstrip().splitlines()[-1] == "Bail out! check 1 is stuck in the kernel" and took < 4
        assert not _gone(sleeper) and "T" not in Path(f"/proc/{sleeper}/stat").read_text().rsplit(")", 1)[1].split()[0]
    finally:
        os.kill(sleeper, signal.SIGKILL)


def test_a_check_that_survives_sigkill_bails_out_and_powers_off(tmp_path):
    """A task stuck in the kernel ignores SIGKILL; here `_alive` is made to say so."""
    rc, fd3, took = _run_checks(tmp_path, 1, {"stuck": "sleep 300", "never": "true"}, prelude="_alive() { return 0; }")
    assert rc == POWERED_OFF and (tmp_path / "poweroff").is_file(), fd3
    assert "survived SIGKILL; its kernel stack:" in fd3
    assert fd3.rstrip().splitlines()[-2:] == ["not ok 1 stuck # TIMEOUT per-check limit 1 s", "Bail out! check 1 is stuck in the kernel"]
    assert "ok 2" not in fd3 and took < 6
    assert (tmp_path / "kmsg").read_text() == "dbgscaffold: check 1 is stuck in the kernel\n"  # and no "end check 1"


# ------------------------------------------------------------- --stress


def test_stress_checks_come_after_the_entries_and_before_rmmod():
    plain = [c.name for c in checks.plan(rp(classic(), "/m.ko"), (6, 1, 0))]
    stressed = [c.name for c in checks.plan(rp(classic(), "/m.ko", stress_seconds=6.0), (6, 1, 0))]
    assert not any(n.startswith("stress:") for n in plain)
    added = [n for n in stressed if n not in plain]
    assert added == ["stress: a: random and oversized writes", "stress: subdir/c: random and oversized writes",
                     "stress: 5 readers and 2 writers at once", "stress: every file still reads"]
    first = stressed.index(added[0])
    assert stressed[:first] == plain[:first] and stressed[first + len(added)] == "rmmod mydebug"
    assert stressed[first + len(added):] == plain[first:]


def test_stress_bodies_per_type():
    bodies = {c.name: c.body for c in checks.stress_checks(classic(), (6, 1, 0), 6.0)}
    rw = bodies["stress: 5 readers and 2 writers at once"]
    # until 0.5 s before the 6 s budget (counted from the first stress check), at least 1 s
    assert rw.startswith("stress_start 550 100; ") and rw.endswith("; stress_wait")
    assert bodies["stress: a: random and oversized writes"].startswith("stress_clock; stress_random ")
    assert rw.count("stress_bg reader /sys/kernel/debug/mydebug/a") == 2  # racing its writer
    assert rw.count("stress_bg reader /sys/kernel/debug/mydebug/b") == 1  # read-only: no writer
    assert "stress_bg writer /sys/kernel/debug/mydebug/a 1 '0\\012' '255\\012' '127\\012'" in rw
    # the string gets a short value and one that fills it (size - 1 bytes, NUL excluded)
    assert "stress_bg writer /sys/kernel/debug/mydebug/subdir/c 1 's\\012' " in rw
    assert bodies["stress: subdir/c: random and oversized writes"] == (
        "stress_random /sys/kernel/debug/mydebug/subdir/c 0 1 31 32 33 4096 65536 && still_reads /sys/kernel/debug/mydebug/subdir/c")
    every = {c.name: c.body for c in checks.stress_checks(example(), (6, 12, 0), 6.0)}
    rw = next(b for n, b in every.items() if "readers and" in n)
    assert "showcase/control 0 " in rw  # custom: the user's handler decides, errors allowed
    assert "stress_bg writer /sys/kernel/debug/showcase/table" not in rw and "writer /sys/kernel/debug/showcase/stats" not in rw
    assert "stress: table: random and oversized writes" not in every and "stress: hex/x32: random and oversized writes" not in every
    assert "stress: control: random and oversized writes" in every
    assert "stress_start 100 100; " in checks.stress_checks(example(), (6, 12, 0), 1.0)[-2].body  # at least 1 s


@pytest.mark.parametrize("version", [(6, 1, 0), (6, 12, 0)])
def test_stressed_scripts_are_valid_ash(version, tmp_path):
    require(BUSYBOX.is_file(), "static busybox")
    path = tmp_path / "run.sh"
    path.write_text(checks.script(rp(example(), "/m.ko", stress_seconds=6.0), version, check_timeout=20))
    proc = subprocess.run([str(BUSYBOX), "sh", "-n", str(path)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr


def test_stress_loops_run_for_their_time_and_report(tmp_path):
    import time

    (tmp_path / "f").write_text("5\n")
    t0 = time.monotonic()
    rc, fd3, err = ash("stress_start 50 10; stress_bg reader f; stress_bg reader f; stress_bg writer f 1 '7\\n' 'x\\n'; stress_wait", tmp_path)
    took = time.monotonic() - t0
    assert rc == 0 and 0.4 < took < 5, (took, fd3, err)
    (summary,) = fd3.splitlines()
    reads, writes = (int(x) for x in summary.split()[1:4:2])  # "# R reads, W writes by 3 concurrent loops"
    assert reads > 0 and writes > 0 and " writes by 3 concurrent loops in 0." in summary, summary
    assert (tmp_path / "f").read_text() in ("7\n", "x\n")


def test_the_concurrent_phase_fits_the_budget_and_the_check_limit(tmp_path):
    import time

    def took(script: str) -> float:
        t0 = time.monotonic()
        rc, fd3, _ = ash(script + "; stress_bg reader f; stress_wait", tmp_path)
        assert rc == 0, fd3
        return time.monotonic() - t0

    (tmp_path / "f").write_text("1\n")
    assert 0.8 < took("stress_start 100 10") < 3  # no clock: the budget counts from now
    assert took("stress_clock; sleep 1; stress_start 120 10") < 1.6  # 1 s of the 1.2 s spent already (not 2.2 s)
    assert 1.4 < took("stress_clock; sleep 1; stress_start 50 50") < 2.3  # but at least MIN (0.5 s)
    assert took("DBGS_CHECK_TIMEOUT=2; stress_start 1000 100") < 2  # ends a second before the check's limit


def test_stress_fails_on_a_failing_reader_or_strict_writer_only(tmp_path):
    (tmp_path / "d").mkdir()
    rc, fd3, _ = ash("stress_start 30 10; stress_bg reader missing; stress_wait", tmp_path)
    assert rc != 0 and "# reading missing failed after 0 reads:" in fd3
    rc, fd3, _ = ash("stress_start 30 10; stress_bg writer d 1 '1\\n'; stress_wait", tmp_path)  # a directory: no write
    assert rc != 0 and "to d failed after 0 writes" in fd3, fd3
    rc, fd3, _ = ash("stress_start 30 10; stress_bg writer d 0 '1\\n'; stress_wait", tmp_path)  # not strict: the kernel's right
    assert rc == 0, fd3


def test_stress_random_writes_and_still_reads(tmp_path):
    (tmp_path / "f").write_text("")
    assert ash("stress_random f 0 1 4096 && still_reads f", tmp_path)[0] == 0
    assert (tmp_path / "f").stat().st_size == 4096  # one write each, in place (notrunc), the largest last
    rc, fd3, _ = ash("stress_random d 1 5; still_reads f missing", tmp_path)  # a rejected write is no failure
    assert rc != 0 and fd3.startswith("# reading missing failed:"), fd3
