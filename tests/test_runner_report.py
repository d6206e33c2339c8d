"""runner.report: JUnit XML and JSON from judged runs (pure, no VM)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

from dbgscaffold.runner import report
from dbgscaffold.runner.judge import judge
from test_runner_judge import NAMES, PASS, rr

CRASH_RESULTS = """
    KTAP version 1
    1..4
    ok 1 insmod m
    # skipped for a reason
    ok 2 a: exists # SKIP
    # read: 5
    not ok 3 a: write 0, read it back
    Bail out! the kernel oopsed during check 3
"""
CONSOLE = "dbgscaffold: begin check 3\nBUG: kernel NULL pointer dereference, address: 0\nRIP: 0010:f+0x1/0x2 [m]\n---[ end trace 0 ]---\n\x01odd\n"


def test_junit_failure_error_skipped_and_the_log():
    ok = judge("m", NAMES, rr(PASS), release="6.1.0-1-amd64", accel="tcg")
    bad = judge("m", NAMES, rr(CRASH_RESULTS, CONSOLE), release="6.12.1-amd64", accel="tcg")
    failing = judge("m", NAMES, rr(PASS.replace("ok 3 a: write 0", "# read: 5\n    not ok 3 a: write 0")), release="6.1.0-1-amd64")
    root = ET.fromstring(report.junit_xml([ok, bad, failing]))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["m on 6.1.0-1-amd64", "m on 6.12.1-amd64", "m on 6.1.0-1-amd64"]
    assert suites[0].get("failures") == "0" and suites[0].get("errors") == "0"
    cases = suites[1].findall("testcase")
    assert cases[1].find("skipped") is not None
    err = cases[2].find("error")
    assert err is not None and "NULL pointer dereference" in err.get("message") and "RIP" in err.text
    assert cases[3].find("error").get("type") == "not run"
    assert "\\x01odd" in suites[1].find("system-out").text
    failure = suites[2].findall("testcase")[2].find("failure")
    assert failure is not None and failure.get("message") == "read: 5"


def test_json_has_release_accel_boot_and_durations():
    run = judge("m", NAMES, rr(PASS), release="6.1.0-1-amd64", accel="tcg", accel_reason="TCG: no vmx")
    doc = json.loads(report.json_text([run]))
    assert doc["schema"] == "dbgscaffold/test/v1" and doc["exit_code"] == 0
    r = doc["runs"][0]
    assert (r["kernel"], r["accel"], r["boot_seconds"]) == ("6.1.0-1-amd64", "tcg", 1.2)
    assert [c["seconds"] is not None for c in r["checks"]] == [True, True, True, False]
    assert r["taint"] == {"value": 12288, "letters": "OE"}


def test_the_table_shows_the_crash_under_its_check():
    from rich.console import Console

    out = io.StringIO()
    run = judge("m", NAMES, rr(CRASH_RESULTS, CONSOLE), release="6.12.1-amd64", accel="tcg")
    report.print_run(run, Console(file=out, width=200))
    text = out.getvalue()
    assert "crashed" in text and "not run" in text and "BUG: kernel NULL pointer dereference" in text
    assert "(check 3)" in text and "exit 6" in text
