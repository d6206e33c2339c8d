"""Labs end to end in the VM, on both lab kernels (6.1 and 6.12).

`lab start` + `lab check`: the skeleton fails every TODO task, the solution
passes; `lab selfcheck` proves both labs; `lab grade` scores a folder with a
solution, a skeleton tarball, a crasher and one that does not build — the crash
is charged to its student only and located at file:line in its TODO; a
solution of debugfs-fops without its lock fails the concurrency check.
"""

from __future__ import annotations

import csv
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from conftest import require_tools, run_cli
from dbgscaffold.vm import images
from test_vm_module import series  # noqa: F401 - the kernel series fixture (6.1, 6.12) and its requirements

pytestmark = pytest.mark.slow


def test_start_and_check_skeleton_fails_solution_passes(series, tmp_path):
    skel, sol = tmp_path / "skel", tmp_path / "sol"
    assert run_cli("lab", "start", "debugfs-basics", str(skel)).exit_code == 0
    r = run_cli("lab", "check", str(skel), "--kernel", series)
    assert r.exception is None and r.exit_code == 1, r.output
    for task in range(1, 6):
        assert f"FAIL task {task}  0/" in r.stdout, r.stdout
    assert "pass task 0  1/1" in r.stdout
    assert "no /sys/kernel/debug/mydebug: create it with debugfs_create_dir" in r.stdout  # the check's own hint
    assert run_cli("lab", "solution", "debugfs-basics", str(sol)).exit_code == 0
    r = run_cli("lab", "check", str(sol), "--kernel", series)
    assert r.exit_code == 0, r.output
    assert "12/12 points — pass: 9 checks" in r.stdout  # the 5 visible checks and task 0's 4: no hidden ones
    assert "FAIL" not in r.stdout and "pass task 5  3/3" in r.stdout


@pytest.mark.parametrize("lab", ["debugfs-basics", "debugfs-fops"])
def test_selfcheck_passes_and_every_planted_bug_passes_a_stock_kernel(series, lab):
    r = run_cli("lab", "selfcheck", lab, "--kernel", series, "--mutants")
    assert r.exception is None and r.exit_code == 0, r.output
    assert "selfcheck: no defects" in r.stdout and "DEFECT" not in r.stdout
    # no detector on Debian's kernels: each planted bug passes every check (test_vm_debug_kernel catches them)
    assert "mutant use-after-free: passes every check (no KASAN here)" in r.stdout
    assert "mutant leak: passes every check (no kmemleak here)" in r.stdout


def test_selfcheck_finds_a_check_that_cannot_fail(series, tmp_path, monkeypatch):
    from dbgscaffold.lab import manifest

    labs = tmp_path / "labs"
    shutil.copytree(manifest.labs_root() / "debugfs-basics", labs / "debugfs-basics")
    (labs / "debugfs-basics" / "checks" / "hidden" / "99-always.sh").write_text("# task: 4\n# title: stale variable\nok \"always\"\n")
    monkeypatch.setattr(manifest, "labs_root", lambda: labs)
    r = run_cli("lab", "selfcheck", "debugfs-basics", "--kernel", series)
    assert r.exit_code == 1, r.output
    assert "hidden check 99-always.sh passes on the skeleton: it cannot fail for task 4" in r.stdout
    assert "selfcheck: 1 defect(s)" in r.stdout


def test_thorough_selfcheck_finds_a_check_scoring_the_wrong_task(series, tmp_path, monkeypatch):
    """A task-4 check that really reads task 3's file fails on the skeleton (no files
    at all) but passes without task 4's code: only --thorough catches it."""
    from dbgscaffold.lab import manifest

    if series != "6.1":
        pytest.skip("the logic does not depend on the kernel: one is enough")
    labs = tmp_path / "labs"
    shutil.copytree(manifest.labs_root() / "debugfs-basics", labs / "debugfs-basics")
    (labs / "debugfs-basics" / "checks" / "hidden" / "45-wrong.sh").write_text(
        "# task: 4\n# title: reads b\nif [ -e \"$ROOT/b\" ]; then ok b; else not_ok b; fi\n")
    monkeypatch.setattr(manifest, "labs_root", lambda: labs)
    plain = run_cli("lab", "selfcheck", "debugfs-basics", "--kernel", series)
    assert plain.exit_code == 0, plain.output
    r = run_cli("lab", "selfcheck", "debugfs-basics", "--kernel", series, "--thorough")
    assert r.exit_code == 1, r.output
    assert "hidden check 45-wrong.sh passes without task 4's code: it cannot fail" in r.stdout
    assert "selfcheck: 1 defect(s)" in r.stdout


def crasher(sol: Path) -> None:
    c = sol / "mydebug.c"
    text = c.read_text()
    bad = text.replace("\tif (count > C_SIZE - 1)\n\t\treturn -ENOSPC;\n",
                       "\tif (count > C_SIZE - 1)\n\t\treturn -ENOSPC;\n\tkbuf = NULL;\n\tkbuf[count] = 'x';\n", 1)
    assert bad != text
    c.write_text(bad)


def test_grade_a_folder(series, tmp_path):
    require_tools("objdump", "addr2line")  # the crash's source line
    subs = tmp_path / "subs"
    subs.mkdir()
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "alice")).exit_code == 0
    assert run_cli("lab", "start", "debugfs-basics", str(tmp_path / "bob")).exit_code == 0
    with tarfile.open(subs / "bob.tgz", "w:gz") as tar:
        tar.add(tmp_path / "bob", arcname="bob")
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "carol")).exit_code == 0
    crasher(subs / "carol")
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "dave")).exit_code == 0
    (subs / "dave" / "mydebug.c").write_text((subs / "dave" / "mydebug.c").read_text().replace("static u8 a = 5;", "static u8 a = 5"))
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "erin")).exit_code == 0  # after the crasher
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "frank")).exit_code == 0  # a read that never returns
    c = subs / "frank" / "mydebug.c"
    c.write_text(c.read_text().replace("#include <linux/debugfs.h>\n", "#include <linux/debugfs.h>\n#include <linux/delay.h>\n")
                 .replace("\tmutex_lock(&c_lock);\n\tlen = c_len;", "\tfor (;;)\n\t\tmsleep(100);\n\tmutex_lock(&c_lock);\n\tlen = c_len;"))
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "gina")).exit_code == 0  # after the hang
    out = tmp_path / "report" / "grades.csv"
    r = run_cli("lab", "grade", str(subs), "--lab", "debugfs-basics", "--kernel", series, "--out", str(out), "--jobs", "2",
                "--check-timeout", "5")
    assert r.exception is None and r.exit_code == 0, r.output
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert list(rows) == ["alice", "bob", "carol", "dave", "erin", "frank", "gina"]
    assert (rows["alice"]["total"], rows["alice"]["exit"]) == ("12", "0")
    assert (rows["erin"]["total"], rows["erin"]["exit"]) == ("12", "0")  # the crash before is not charged here
    assert (rows["gina"]["total"], rows["gina"]["exit"]) == ("12", "0")  # nor the hang
    assert rows["frank"]["exit"] == "5" and rows["frank"]["verdict"].startswith("timeout") and rows["frank"]["task 4"] == "0"
    assert rows["frank"]["task 2"] == "2" and rows["frank"]["task 1"] == "2"  # what ran before the hang counts
    assert rows["bob"]["total"] == "1" and rows["bob"]["task 5"] == "0" and rows["bob"]["exit"] == "1"
    assert rows["dave"]["total"] == "0" and rows["dave"]["exit"] == "3"
    assert rows["dave"]["verdict"].startswith("build failed: mydebug.c:29:1: error: expected")
    carol = rows["carol"]
    assert carol["exit"] == "6" and carol["task 5"] == "0" and carol["task 1"] == "2" and carol["task 4"] == "2"
    doc = json.loads(out.with_suffix(".json").read_text())
    c = next(s for s in doc["students"] if s["student"] == "carol")
    assert c["crash"]["function"] == "c_write"
    assert c["crash_location"].startswith("mydebug.c:87 (c_write, in TODO 5 (replace c_data;"), c["crash_location"]
    checks = {x["name"]: x for x in c["checks"]}
    assert any(x["hidden"] for x in c["checks"])
    crashed = [x for x in c["checks"] if x["status"] == "crashed"]
    assert len(crashed) == 1 and crashed[0]["task"] == 5 and checks
    d = next(s for s in doc["students"] if s["student"] == "dave")
    assert d["build_errors"][0].startswith("mydebug.c:29:1: error:")


def test_check_points_a_crash_at_its_line_and_todo(series, tmp_path):
    require_tools("objdump", "addr2line")
    assert run_cli("lab", "solution", "debugfs-basics", str(tmp_path / "carol")).exit_code == 0
    crasher(tmp_path / "carol")
    r = run_cli("lab", "check", str(tmp_path / "carol"), "--kernel", series)
    assert r.exception is None and r.exit_code == 6, r.output
    assert "crash at mydebug.c:87 (c_write, in TODO 5 (replace c_data;" in r.stdout
    assert "crash: BUG: kernel NULL pointer dereference in c_write [mydebug]" in r.stdout
    assert "FAIL task 5  0/3" in r.stdout and "pass task 4  2/2" in r.stdout


def test_fops_without_its_lock_fails_the_concurrency_check(series, tmp_path):
    """A race is caught by chance, so three copies run in one batch: nothing but the
    concurrency check may fail in any, and it must fail in at least one. (CI once saw all
    three pass 40 reads when each writer wrote one content only: writers woken together run
    in lock step and leave no torn state; the check's writers now alternate contents.)"""
    from dbgscaffold.lab.engine import run_projects
    from dbgscaffold.lab.manifest import find_lab
    from dbgscaffold.lab.project import write_project

    lab = find_lab("debugfs-fops")
    projects = []
    for n in range(3):
        write_project(lab, tmp_path / f"nolock{n}", solution=True)
        c = tmp_path / f"nolock{n}" / "fopslab.c"
        c.write_text(c.read_text().replace("\tmutex_lock(&buf_lock);\n", "").replace("\tmutex_unlock(&buf_lock);\n", ""))
        projects.append((f"nolock{n}", tmp_path / f"nolock{n}"))
    concurrency = "task 3: two writers and a reader at once: every read is one writer's whole content"
    caught = 0
    for o in run_projects(lab, projects, images.pair_for(series), hidden=True):
        failed = [x for x in o.score.checks if not x.status.ok]
        why = (o.run.verdict, o.run.boot, o.run.ended, [(x.name, x.status, x.diagnostics[:3]) for x in failed][:3], o.run.console[-1500:])
        assert [x.name for x in failed] in ([], [concurrency]), why
        if failed:
            assert any("torn" in d for d in failed[0].diagnostics), why
            caught += 1
    assert caught >= 1, "the concurrency check missed the missing lock in 3 runs out of 3"
