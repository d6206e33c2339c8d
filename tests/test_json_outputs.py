"""Machine-readable output (issue 15): every JSON document carries the one version key,
`schema: dbgscaffold/<document>/vN`, and says what the text output says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import require, run_cli
from dbgscaffold import schemas

REPO = Path(__file__).resolve().parent.parent


def test_every_schema_is_named_alike_and_documented():
    names = {k: v for k, v in vars(schemas).items() if k.isupper()}
    assert len(names) >= 8 and len(set(names.values())) == len(names)
    documented = (REPO / "docs" / "json.md").read_text()
    for value in names.values():
        assert re.fullmatch(r"dbgscaffold/[a-z-]+/v\d+", value), value
        assert f"`{value}`" in documented, f"{value} is not in docs/json.md"


def test_kernels_json_lists_what_the_text_lists():
    text = run_cli("kernels")
    r = run_cli("kernels", "--json")
    assert r.exit_code == text.exit_code, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == "dbgscaffold/kernels/v1"
    for pair in doc["pairs"]:
        assert pair["release"] in text.stdout and pair["image"] in text.stdout
    assert sum(p["default"] for p in doc["pairs"]) == (1 if doc["default"] else 0)
    assert (doc["default"] is None) == (r.exit_code == 4)


def test_doctor_json_has_every_item_with_its_fix():
    text = run_cli("doctor")
    r = run_cli("doctor", "--json")
    doc = json.loads(r.stdout)
    assert doc["schema"] == "dbgscaffold/doctor/v1" and r.exit_code == text.exit_code
    assert doc["ready"] == (r.exit_code == 0)
    assert doc["items"] and all(i["what"] in text.stdout for i in doc["items"])
    assert all(i["state"] in ("ok", "warn", "fail") for i in doc["items"])


def test_lint_json_gives_checkpatchs_findings(tmp_path, checkpatch_script):
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "m")).exit_code == 0
    c = tmp_path / "m" / "mydebug_debugfs.c"
    c.write_text(c.read_text().replace("MODULE_LICENSE", "\t \nMODULE_LICENSE", 1))  # whitespace checkpatch refuses
    r = run_cli("lint", str(tmp_path / "m"), "--no-build", "--json")
    doc = json.loads(r.stdout)
    assert doc["schema"] == "dbgscaffold/lint/v1" and r.exit_code == doc["exit_code"] == 1, r.output
    findings = doc["checkpatch"]["findings"]
    assert findings and all({"file", "line", "level", "type", "message"} <= set(f) for f in findings)
    assert any(f["file"].endswith("mydebug_debugfs.c") for f in findings)

    r = run_cli("lint", str(tmp_path / "nothing-here"), "--no-build", "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == doc["exit_code"] != 0 and "no C sources" in doc["error"]


def test_lab_list_json_names_every_lab():
    text = run_cli("lab", "list")
    r = run_cli("lab", "list", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == "dbgscaffold/lab-list/v1" and not doc["broken"]
    assert {lb["id"] for lb in doc["labs"]} >= {"debugfs-basics", "debugfs-fops"}
    for lb in doc["labs"]:
        assert lb["id"] in text.stdout and lb["tasks"]
        assert lb["max_points"] >= sum(t["points"] for t in lb["tasks"])


@pytest.mark.slow
def test_lab_check_reports_a_run_and_what_stopped_one(tmp_path):
    import xml.etree.ElementTree as ET

    from dbgscaffold.vm import images

    require(any(p.release.startswith("6.1.") for p in images.scan_pairs().pairs), "a 6.1 kernel image + headers pair")
    assert run_cli("lab", "solution", "debugfs-fops", str(tmp_path / "sol")).exit_code == 0
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    r = run_cli("lab", "check", str(tmp_path / "sol"), "--kernel", "6.1", "--json", str(report), "--junit", str(junit))
    assert r.exit_code == 0, r.output
    doc = json.loads(report.read_text())
    assert doc["schema"] == "dbgscaffold/lab-check/v1" and doc["lab"] == "debugfs-fops" and doc["error"] is None
    (run,) = doc["runs"]
    assert run["total"] == run["max"] and all(c["status"] in ("pass", "skip") for c in run["checks"])
    assert len(list(ET.parse(junit).getroot().iter("testcase"))) == len(run["checks"])

    r = run_cli("lab", "check", str(tmp_path / "sol"), "--kernel", "9.99", "--json", str(report), "--junit", str(junit))
    doc = json.loads(report.read_text())
    assert r.exit_code == doc["exit_code"] != 0 and doc["runs"] == [] and "9.99" in doc["error"]
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.find("error") is not None and case.get("name") == "setup" and case.get("classname") == "sol (no kernel)"
