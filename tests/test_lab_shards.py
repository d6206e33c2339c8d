"""Sharded grading end to end (issue 14): the shard and merge commands of the generated
CI workflows, run exactly as written by separate processes with separate caches (as
separate runners would), give the CSV and JSON of one `lab grade` of the whole class."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import require_tools, run_cli
from dbgscaffold.lab.grade import GRADER, MERGER, gitlab_ci_yaml, workflow_yaml
from test_lab_vm import crasher
from test_vm_module import require_6_1

pytestmark = pytest.mark.slow

LAB, SHARDS = "debugfs-basics", 3
DBGSCAFFOLD = str(Path(sys.executable).with_name("dbgscaffold"))


def _class(repo: Path) -> None:
    subs = repo / "subs"
    for name in ("alice", "carol", "dave", "erin"):
        assert run_cli("lab", "solution", LAB, str(subs / name)).exit_code == 0
        c = subs / name / "mydebug.c"
        c.write_text(c.read_text() + f"/* {name} */\n")
    assert run_cli("lab", "start", LAB, str(subs / "bob")).exit_code == 0
    crasher(subs / "carol")


def _commands() -> tuple[str, str]:
    """The shard command (with {k}) and the merge command, the same in both workflows."""
    github = yaml.safe_load(workflow_yaml(LAB, SHARDS, "git+https://example.org/d.git", "subs", "6.1", 2))
    gitlab = yaml.safe_load(gitlab_ci_yaml(LAB, SHARDS, "git+https://example.org/d.git", "subs", "6.1", 2))
    gh_shard = next(s["run"] for s in github["jobs"]["grade"]["steps"] if "lab grade" in s.get("run", ""))
    gl_shard = next(line for line in gitlab["grade"]["script"] if "lab grade" in line)
    assert gh_shard.replace("${{ matrix.shard }}", "{k}") == gl_shard.replace("$CI_NODE_INDEX", "{k}").replace("$CI_NODE_TOTAL", str(SHARDS))
    gh_merge = next(line for s in github["jobs"]["merge"]["steps"] for line in s.get("run", "").splitlines() if "lab merge" in line)
    gl_merge = next(line for line in gitlab["merge"]["script"] if "lab merge" in line)
    assert gh_merge == gl_merge
    assert github["jobs"]["grade"]["strategy"]["matrix"]["shard"] == [1, 2, 3] and gitlab["grade"]["parallel"] == SHARDS
    return gh_shard.replace("${{ matrix.shard }}", "{k}").replace(GRADER, DBGSCAFFOLD), gh_merge.replace(MERGER, DBGSCAFFOLD)


def _without_run_specifics(doc: dict) -> dict:
    """Timings, and a crash's console excerpt (its timestamps and addresses), differ from run to run."""
    def student(s: dict) -> dict:
        out = {k: v for k, v in s.items() if k != "seconds"}
        if "crash" in s:
            out["crash"] = {k: v for k, v in s["crash"].items() if k != "excerpt"}
        return out
    return {**doc, "students": [student(s) for s in doc["students"]]}


def test_shards_graded_by_separate_runners_merge_into_the_single_run(tmp_path):
    require_6_1()
    require_tools("qemu-system-x86_64", "make", "bwrap")
    shard_command, merge_command = _commands()
    repo = tmp_path / "repo"
    _class(repo)

    single = subprocess.run([DBGSCAFFOLD, "lab", "grade", "subs", "--lab", LAB, "--kernel", "6.1", "--out", str(tmp_path / "single.csv")],
                            cwd=repo, env={**os.environ, "DBGSCAFFOLD_CACHE": str(tmp_path / "cache-single")}, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-3000:]

    runners = []
    for k in range(1, SHARDS + 1):  # a checkout and a cache each, side by side
        checkout = tmp_path / f"runner{k}"
        shutil.copytree(repo, checkout)
        runners.append((checkout, subprocess.Popen(["bash", "-c", shard_command.format(k=k)], cwd=checkout, stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT, text=True,
                                                   env={**os.environ, "DBGSCAFFOLD_CACHE": str(tmp_path / f"cache{k}")})))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for k, (checkout, proc) in enumerate(runners, 1):
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-3000:]
        for report in checkout.glob(f"shard-{k}.*"):
            shutil.copy(report, artifacts)
    assert sorted(p.name for p in artifacts.iterdir()) == [f"shard-{k}.{ext}" for k in range(1, SHARDS + 1) for ext in ("csv", "json")]

    merged = subprocess.run(["bash", "-c", merge_command], cwd=artifacts, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stderr
    assert (artifacts / "grades.csv").read_text() == (tmp_path / "single.csv").read_text()
    whole = json.loads((tmp_path / "single.json").read_text())
    assert _without_run_specifics(json.loads((artifacts / "grades.json").read_text())) == _without_run_specifics(whole)
    exits = {s["student"]: s["exit"] for s in whole["students"]}
    assert exits == {"alice": 0, "bob": 1, "carol": 6, "dave": 0, "erin": 0}, "a class with a skeleton and a crasher"
