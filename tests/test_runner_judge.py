"""runner.judge(): KTAP results + console log + taint -> verdict and exit code (pure)."""

from __future__ import annotations

import textwrap

from dbgscaffold.runner.judge import judge
from dbgscaffold.vm.qemu import RunResult

NAMES = ["insmod m", "a: exists", "a: write 0, read it back", "rmmod m"]


def rr(results: str, console: str = "", timed_out: bool = False, ended_with: str = "reboot: Power down\n") -> RunResult:
    return RunResult(
        argv=("qemu",), exit_status=None if timed_out else 0, timed_out=timed_out,
        console=textwrap.dedent(console).lstrip("\n") + ("" if timed_out else ended_with),
        results=textwrap.dedent(results).lstrip("\n"), stderr="", wall_seconds=2.5, boot_seconds=1.2,
    )


PASS = """
    KTAP version 1
    1..4
    # uptime: 1.00 1.03
    # taint: 0 -> 12288
    ok 1 insmod m
    # uptime: 1.03 1.04
    ok 2 a: exists
    # uptime: 1.04 1.10
    ok 3 a: write 0, read it back
    ok 4 rmmod m
    # taint: 12288
"""


def test_all_ok_passes_with_durations_and_expected_taint():
    t = judge("m", NAMES, rr(PASS))
    assert t.exit_code == 0 and t.verdict == "pass: 4 checks"
    assert [c.status for c in t.checks] == ["pass"] * 4
    assert abs(t.checks[0].seconds - 0.03) < 1e-9 and t.checks[3].seconds is None
    assert t.taint.letters == "OE" and not t.taint.failed
    assert t.checks[0].taint_before == 0 and t.checks[0].taint_after == 12288
    assert "uptime" not in " ".join(t.checks[0].diagnostics)


def test_a_failing_check_is_exit_1_with_its_diagnostics():
    results = PASS.replace("ok 3 a: write 0", "# read: 5\n    # expected: 0\n    not ok 3 a: write 0")
    t = judge("m", NAMES, rr(results))
    assert t.exit_code == 1 and t.verdict == "1 of 4 checks failed"
    assert t.checks[2].status == "fail" and t.checks[2].diagnostics == ("read: 5", "expected: 0")


def test_an_oops_is_a_crash_attributed_to_its_check():
    results = """
        KTAP version 1
        1..4
        ok 1 insmod m
        ok 2 a: exists
        # taint: 12288 -> 12416
        not ok 3 a: write 0, read it back
        Bail out! the kernel oopsed during check 3
    """
    console = """
        [    1.0] dbgscaffold: begin check 3
        [    1.1] BUG: kernel NULL pointer dereference, address: 0000000000000000
        [    1.1] #PF: supervisor read access in kernel mode
        [    1.1] Oops: 0000 [#1] PREEMPT SMP NOPTI
        [    1.1] RIP: 0010:textbuf_write+0x1a/0x120 [m]
        [    1.1] ---[ end trace 0000000000000000 ]---
        [    1.2] dbgscaffold: end check 3
    """
    t = judge("m", NAMES, rr(results, console))
    assert t.exit_code == 6
    assert t.verdict.startswith("crash: BUG: kernel NULL pointer dereference") and "in check 3 'a: write 0, read it back'" in t.verdict
    assert t.checks[2].status == "crashed" and t.checks[2].crash.function == "textbuf_write"
    assert t.checks[3].status == "not run"
    assert "D" in t.taint.letters


def test_a_crash_explains_a_later_hang():
    results = "KTAP version 1\n1..4\nok 1 insmod m\n# taint: 12288 -> 12416\nnot ok 2 a: exists\n"
    console = "dbgscaffold: begin check 2\nBUG: kernel NULL pointer dereference, address: 0\nRIP: 0010:f+0x1/0x2 [m]\n---[ end trace 0 ]---\ndbgscaffold: end check 2\ndbgscaffold: begin check 3\n"
    t = judge("m", NAMES, rr(results, console, timed_out=True))
    assert t.exit_code == 6 and "in check 2" in t.verdict


def test_a_hang_is_a_timeout_naming_the_stuck_check():
    results = "KTAP version 1\n1..4\n"
    t = judge("m", NAMES, rr(results, "dbgscaffold: begin check 1\n", timed_out=True))
    assert t.exit_code == 5 and "stuck in check 1 'insmod m'" in t.verdict
    assert [c.status for c in t.checks] == ["timeout", "not run", "not run", "not run"]


def test_missing_results_without_a_timeout_are_crashed():
    results = "KTAP version 1\n1..4\nok 1 insmod m\n"
    t = judge("m", NAMES, rr(results, ended_with="Kernel panic - not syncing: Attempted to kill init!\n"))
    assert t.exit_code == 6 and [c.status for c in t.checks][1:] == ["crashed"] * 3


def test_a_warning_taint_fails_the_check_and_the_run():
    results = PASS.replace("# uptime: 1.03 1.04\n", "# uptime: 1.03 1.04\n    # taint: 12288 -> 12800\n").replace("# taint: 12288\n", "# taint: 12800\n")
    t = judge("m", NAMES, rr(results))
    assert t.checks[1].status == "fail" and "tainted" in t.checks[1].diagnostics[-1]
    assert t.exit_code == 6 and "W" in t.taint.letters


def test_cli_test_on_a_directory_that_is_no_module_is_a_usage_error(tmp_path):
    from conftest import run_cli

    r = run_cli("test", str(tmp_path))
    assert r.exit_code == 2 and "not a module directory: no Kbuild and no Makefile" in r.stderr and "Fix:" in r.stderr
    (tmp_path / "Makefile").write_text("all:\n\techo hi\n")
    r = run_cli("test", str(tmp_path))
    assert r.exit_code == 2 and "the Makefile names no obj-m" in r.stderr and "Fix:" in r.stderr


def test_cli_build_reports_compiler_errors_with_exit_3(tmp_path):
    from conftest import require, run_cli
    from dbgscaffold.vm import images

    require(bool(images.scan_pairs().pairs), "a kernel image + headers pair")
    assert run_cli("new", "bad", "-o", str(tmp_path / "bad")).exit_code == 0
    src = tmp_path / "bad" / "bad_debugfs.c"
    src.write_text(src.read_text().replace("return 0;\n}", "return undeclared_thing;\n}", 1))
    r = run_cli("build", str(tmp_path / "bad"))
    assert r.exit_code == 3, r.output
    assert "bad_debugfs.c:" in r.stderr and "undeclared_thing" in r.stderr and "FAILED" in r.stderr
    assert str(tmp_path / "bad" / "bad_debugfs.c") in r.stderr or "bad/bad_debugfs.c" in r.stderr


def test_cli_kernels_marks_the_default():
    from conftest import require, run_cli
    from dbgscaffold.vm import images

    require(bool(images.scan_pairs().pairs), "a kernel image + headers pair")
    r = run_cli("kernels")
    assert r.exit_code == 0 and "default: using" in r.stdout
    assert sum(line.startswith("* ") for line in r.stdout.splitlines()) == 1


def test_cli_test_of_a_module_that_does_not_compile_is_exit_3(tmp_path):
    from conftest import require, run_cli
    from dbgscaffold.vm import images

    require(bool(images.scan_pairs().pairs), "a kernel image + headers pair")
    assert run_cli("new", "bad", "-o", str(tmp_path / "bad")).exit_code == 0
    src = tmp_path / "bad" / "bad_debugfs.c"
    src.write_text(src.read_text().replace("return 0;\n}", "return undeclared_thing;\n}", 1))
    r = run_cli("test", str(tmp_path / "bad"))
    assert r.exit_code == 3, r.output
    assert r.stderr.count("undeclared_thing") == 1 and "bad_debugfs.c:" in r.stderr and "FAILED" in r.stderr


def test_a_check_the_guest_timed_out_is_exit_5_naming_it():
    results = PASS.replace("ok 3 a: write 0, read it back", "not ok 3 a: write 0, read it back # TIMEOUT per-check limit 5 s")
    t = judge("m", NAMES, rr(results))
    assert t.exit_code == 5 and t.checks[2].status == "timeout"
    assert t.verdict == "timeout: check 3 'a: write 0, read it back' exceeded its time limit"


def test_two_results_for_one_check_are_neither_trusted():
    """Only the checks write tokened lines, one a check: a second (a module that learnt the
    token and wrote `ok 3` before the real `not ok 3`) makes that check fail, whatever it says."""
    forged = PASS.replace("    ok 3 a: write 0, read it back\n", "    ok 3 a: write 0, read it back\n    not ok 3 a: write 0, read it back\n")
    forged = forged.replace("    ok 2 a: exists\n", "    ok 3 forged\n    ok 2 a: exists\n")
    t = judge("m", NAMES, rr(forged))
    assert [c.status for c in t.checks] == ["pass", "pass", "fail", "pass"]
    assert "two results arrived for this check" in t.checks[2].diagnostics[0]
    assert t.exit_code == 1


def test_the_taint_a_module_sets_by_loading_is_no_diagnostic_but_any_other_is():
    t = judge("m", NAMES, rr(PASS))
    assert not any("taint" in d for c in t.checks for d in c.diagnostics), "0 -> OE: only where the module ran first"
    t = judge("m", NAMES, rr(PASS.replace("# taint: 0 -> 12288", "# taint: 0 -> 12800").replace("# taint: 12288\n", "# taint: 12800\n")))
    assert "taint: 0 -> 12800" in t.checks[0].diagnostics
