"""The lab run's plan and script, scoring, reports, shards and their merge, the CI
workflow and safe extraction of submissions (pure or tmp files only)."""

from __future__ import annotations

import io
import json
import tarfile
from types import SimpleNamespace

import pytest
import yaml

from conftest import run_cli
from dbgscaffold.errors import UserError
from dbgscaffold.lab.engine import Outcome
from dbgscaffold.lab.grade import csv_text, extract, find_submissions, merge_docs, report_doc, shard, student_doc, workflow_yaml
from dbgscaffold.lab.manifest import find_lab
from dbgscaffold.lab.run import plan, run_script, score
from dbgscaffold.runner.decode import module_frames
from dbgscaffold.runner.model import BuildFailure, CheckResult, Status, TestRun
from dbgscaffold.vm.crash import CrashReport

LAB = find_lab("debugfs-basics")


def test_plan_wraps_the_sorted_checks_in_task_zero_load_and_unload():
    checks = plan(LAB, hidden=True)
    assert [c.task for c in checks] == [0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 0, 0, 0]
    assert checks[-1].name == "no memory leaked" and checks[-1].body == "dbgs_no_leaks"  # kmemleak's, a skip without it
    assert checks[0].body.startswith("dbgs_leaks_reset; ")  # a VM's earlier project leaves no leak behind
    assert [c.file for c in checks[1:-3]] == ["10-dir.sh", "15-remove.sh", "20-a.sh", "25-a-u8.sh", "30-b.sh", "35-b-write.sh",
                                              "40-c-read.sh", "50-c-write.sh", "55-c-bounds.sh"]
    assert [c.hidden for c in checks[1:3]] == [False, True]
    assert [c.file for c in plan(LAB, hidden=False)[1:-3]] == ["10-dir.sh", "20-a.sh", "30-b.sh", "40-c-read.sh", "50-c-write.sh"]


def test_the_script_sources_the_guest_library_and_exports_the_series():
    checks = plan(LAB, hidden=False)
    text = run_script(LAB, checks, "6.12", check_timeout=7.5)
    assert text.splitlines()[1] == ". /checks/ktap.sh"
    assert "SERIES=6.12" in text and "export MODULE ROOT KO SERIES" in text and "DBGS_CHECK_TIMEOUT=8" in text
    assert "_dbgs_res '1..9'" in text
    assert "run_check 1 'insmod mydebug' check_1" in text
    assert "run_user_check 2 'task 1: the directory /sys/kernel/debug/mydebug exists after insmod' /run/payload/checks/10-dir.sh" in text
    # a module or file left behind keeps the module loaded: the runner replaces that VM
    assert text.rstrip().splitlines()[-1].endswith("|| insmod /run/payload/mydebug.ko 2>/dev/null")


def fake_run(statuses: list[str], verdict: str = "", exit_code: int = 1, crashes=()):
    checks = tuple(CheckResult(n, f"c{n}", Status(s), (f"why {n}",) if s != "pass" else ()) for n, s in enumerate(statuses, 1))
    return SimpleNamespace(checks=checks, verdict=verdict or "some failed", exit_code=exit_code, crashes=tuple(crashes), build_failure=None,
                           findings=tuple(c.title for c in crashes), forged=(), forged_count=0)


def test_score_is_points_times_the_share_of_passing_checks():
    checks = plan(LAB, hidden=True)
    #          load  t1 t1  t2 t2  t3 t3  t4 t5 t5  rmmod gone leaks
    run = fake_run(["pass", "pass", "fail", "pass", "pass", "fail", "fail", "pass", "skip", "crashed", "pass", "pass", "skip"])
    s = score(LAB, checks, run)
    assert [(t.number, t.points, t.passed, t.total) for t in s.tasks] == [(0, 1.0, 4, 4), (1, 1.0, 1, 2), (2, 2.0, 2, 2), (3, 0.0, 0, 2), (4, 2.0, 1, 1), (5, 1.5, 1, 2)]
    assert s.total == 7.5 and s.max_points == 12.0
    assert s.checks[2].diagnostics == ("why 3",) and s.checks[2].hidden and s.checks[2].file == "15-remove.sh"


def test_a_task_without_checks_in_the_plan_is_worth_nothing():
    from dataclasses import replace as dc_replace

    checks = [c for c in plan(LAB, hidden=True) if c.task != 0]  # a kind whose plan has no load/unload checks
    s = score(LAB, checks, fake_run(["pass"] * len(checks), exit_code=0))
    assert s.tasks[0].max_points == 0 and s.total == s.max_points == 11.0
    assert dc_replace(LAB).load_points == 1.0


def test_a_build_failure_scores_nothing():
    run = TestRun.of_build_failure("mydebug", BuildFailure("6.1.0-1-amd64", None, "mydebug.c:3:1: error: expected ';'"))
    s = score(LAB, plan(LAB, True), run)
    assert s.total == 0 and {c.status for c in s.checks} == {"build failed"}


def _outcome(name: str, statuses: list[str], crash=None) -> Outcome:
    run = fake_run(statuses, crashes=[crash] if crash else [])
    return Outcome(name, "6.1.0-x", score(LAB, plan(LAB, True), run, "mydebug.c:9 (c_write)" if crash else ""), run)


def _all() -> list[Outcome]:
    good = ["pass"] * 13
    crash = CrashReport("null", "BUG: NULL in c_write [mydebug]", "BUG", "BUG: ...\nRIP: 0010:c_write+0x1d/0x60 [mydebug]", 3, True, "c_write", "mydebug", "10")
    return [_outcome(n, s, c) for n, s, c in [
        ("alice", good, None), ("bob", ["pass"] + ["fail"] * 9 + ["pass", "pass", "pass"], None),
        ("carol", good[:9] + ["crashed", "not run", "not run", "not run"], crash), ("dave", good, None), ("erin", good, None)]]


def test_merging_shards_equals_grading_all_at_once():
    outcomes = _all()
    whole = report_doc(LAB, [student_doc(o) for o in outcomes])
    shards = [report_doc(LAB, [student_doc(o) for o in shard(outcomes, f"{k}/3")]) for k in (1, 2, 3)]
    assert sorted(len(s["students"]) for s in shards) == [1, 2, 2]
    merged = merge_docs(json.loads(json.dumps(shards)))
    assert merged == json.loads(json.dumps(whole))
    assert csv_text(merged) == csv_text(whole)
    with pytest.raises(UserError, match="'alice' is also in"):
        merge_docs([shards[0], shards[0]])


def test_csv_has_a_column_per_task_and_the_crash_stays_with_its_student():
    doc = report_doc(LAB, [student_doc(o) for o in _all()])
    lines = csv_text(doc).splitlines()
    assert lines[0] == "student,task 0,task 1,task 2,task 3,task 4,task 5,total,max,verdict,exit,findings"
    assert lines[1] == "alice,1,2,2,2,2,3,12,12,some failed,1,"
    assert lines[3] == "carol,0.25,2,2,2,2,1.5,9.75,12,some failed at mydebug.c:9 (c_write),1,BUG: NULL in c_write [mydebug]"
    carol = next(s for s in doc["students"] if s["student"] == "carol")
    assert carol["crash"]["function"] == "c_write" and carol["crash_location"] == "mydebug.c:9 (c_write)"
    assert carol["tasks"]["5"] == 1.5 and carol["tasks"]["0"] == 0.25  # rmmod, "nothing left" and the leak check never ran
    assert carol["findings"] == ["BUG: NULL in c_write [mydebug]"]
    assert "crash" not in next(s for s in doc["students"] if s["student"] == "dave")


def test_shard_spec_is_validated():
    assert shard(list(range(7)), "2/3") == [1, 4]
    assert shard(list(range(3)), None) == [0, 1, 2]
    for bad in ("0/3", "4/3", "x", "1-2"):
        with pytest.raises(UserError, match="expected K/N"):
            shard([1], bad)


def test_the_workflow_is_valid_yaml_with_a_matrix_and_a_merge_job(tmp_path):
    doc = yaml.safe_load(workflow_yaml("debugfs-basics", 3, "./dist/dbgscaffold-0.1.0-py3-none-any.whl", "subs"))
    assert doc["permissions"] == {"contents": "read"}
    grade, merge = doc["jobs"]["grade"], doc["jobs"]["merge"]
    assert grade["strategy"]["matrix"]["shard"] == [1, 2, 3] and merge["needs"] == "grade"
    run = "\n".join(s.get("run", "") for s in grade["steps"])
    assert "dbgscaffold lab grade subs --lab debugfs-basics" in run and "--shard ${{ matrix.shard }}/3" in run
    assert "dbgscaffold lab merge shard-*.json --out grades.csv" in "\n".join(s.get("run", "") for s in merge["steps"])
    out = tmp_path / "ci" / "grade.yml"
    result = run_cli("lab", "grade", "--lab", "debugfs-fops", "--workflow", str(out), "--shards", "5", "--install", "git+https://example.org/d.git")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(out.read_text())
    assert written["jobs"]["grade"]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4, 5]
    merge_run = next(s["run"] for s in written["jobs"]["merge"]["steps"] if "run" in s)
    assert "pip install git+https://example.org/d.git" in merge_run
    assert written["jobs"]["merge"]["steps"][0]["uses"].startswith("actions/checkout@")  # a wheel in the repository
    unnamed = run_cli("lab", "grade", "--lab", "debugfs-fops", "--workflow", str(tmp_path / "x.yml"))
    assert unnamed.exit_code == 2 and "--install" in unnamed.output and not (tmp_path / "x.yml").exists()
    gitlab = tmp_path / ".gitlab-ci.yml"
    result = run_cli("lab", "grade", "--lab", "debugfs-fops", "--workflow", str(gitlab), "--ci", "gitlab", "--shards", "5",
                     "--install", "./dist/my wheel.whl")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(gitlab.read_text())
    assert written["grade"]["parallel"] == 5 and written["merge"]["needs"] == ["grade"]
    assert "/opt/dbgscaffold/bin/pip install './dist/my wheel.whl'" in written["grade"]["script"]  # quoted
    assert any("--shard $CI_NODE_INDEX/$CI_NODE_TOTAL" in line for line in written["grade"]["script"])
    # each script item is a command of its own: none may continue on the next
    assert not [line for line in written["grade"]["script"] + written["merge"]["script"] if line.rstrip().endswith("\\")]


def test_merge_cli_writes_csv_and_json(tmp_path):
    outcomes = _all()
    for k in (1, 2):
        (tmp_path / f"s{k}.json").write_text(json.dumps(report_doc(LAB, [student_doc(o) for o in shard(outcomes, f"{k}/2")])))
    result = run_cli("lab", "merge", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"), "--out", str(tmp_path / "all.csv"))
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 6
    assert [s["student"] for s in json.loads((tmp_path / "all.json").read_text())["students"]] == ["alice", "bob", "carol", "dave", "erin"]
    bad = run_cli("lab", "merge", str(tmp_path / "all.csv"), "--out", str(tmp_path / "x.csv"))
    assert bad.exit_code == 2 and "not a readable JSON report" in bad.stderr


def _tar(path, members: list[tuple[tarfile.TarInfo, bytes]]):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data or info.isfile() else None)


@pytest.mark.parametrize("member", [
    tarfile.TarInfo("../evil.c"), tarfile.TarInfo("/etc/evil.c"), tarfile.TarInfo("a/../../evil.c")])
def test_extraction_refuses_paths_outside(tmp_path, member):
    _tar(tmp_path / "s.tgz", [(member, b"x")])
    with pytest.raises(UserError, match="a path outside the submission"):
        extract(tmp_path / "s.tgz", tmp_path / "out")
    assert not (tmp_path / "evil.c").exists()


def test_extraction_refuses_links_and_finds_the_project_inside_one_folder(tmp_path):
    link = tarfile.TarInfo("p/link.c")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _tar(tmp_path / "l.tar.gz", [(link, b"")])
    with pytest.raises(UserError, match="a link"):
        extract(tmp_path / "l.tar.gz", tmp_path / "o1")
    _tar(tmp_path / "ok.tgz", [(tarfile.TarInfo("bob/Kbuild"), b"obj-m := m.o\n"), (tarfile.TarInfo("bob/m.c"), b"int x;\n")])
    assert extract(tmp_path / "ok.tgz", tmp_path / "o2") == tmp_path / "o2" / "bob"


def test_submissions_are_directories_and_tarballs_named_after_students(tmp_path):
    (tmp_path / "alice").mkdir()
    for name in ("bob.tar.gz", "carol.tgz", "dave.tar", "notes.txt", ".hidden"):
        (tmp_path / name).write_text("")
    assert [(s.student, s.path.name) for s in find_submissions(tmp_path)] == [
        ("alice", "alice"), ("bob", "bob.tar.gz"), ("carol", "carol.tgz"), ("dave", "dave.tar")]
    (tmp_path / "alice.tgz").write_text("")
    with pytest.raises(UserError, match="a second submission for 'alice'"):
        find_submissions(tmp_path)


def test_module_frames_know_the_faulting_rip_and_the_guesses():
    rep = CrashReport("null", "t", "h", "Call Trace:\n c_write+0x40/0x90 [mydebug]\nRIP: 0010:c_write+0x1d/0x90 [mydebug]\n", 1, True, "c_write", "mydebug")
    frames = module_frames(rep.excerpt, ["mydebug"])
    assert [(f.function, f.offset, f.exact) for f in frames] == [("c_write", 0x40, False), ("c_write", 0x1D, True)]
    rep2 = CrashReport("warn", "t", "h", " ? foo+0x1/0x2 [other]\n ? c_read+0x3/0x90 [mydebug]\n c_read+0x2a/0x90 [mydebug]\n", 1, False, "c_read", "mydebug")
    assert [(f.offset, f.reliable) for f in module_frames(rep2.excerpt, ["mydebug"])] == [(0x3, False), (0x2A, True)]
