"""Every KTAP document dbgscaffold writes is read by the kernel's own parser alike.

The oracle: `kunit.py parse` (tools/testing/kunit of Debian's linux-source-6.12, extracted
once into the cache as `dbgscaffold kernel build` does). Its JSON gives every leaf test's
name and status; ours (vm.ktap) must give the same, and its text must hold no parser
complaint. Our own lenient parser accepting a layout is no evidence: it accepted one that
sent kunit_parser into an endless loop of [CRASHED] lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require, run_cli
from dbgscaffold.vm import ktap
from test_vm_module import new_module, require_6_1

pytestmark = pytest.mark.slow

USER_TEST = """\
ok "first"
diag "a note"
not_ok "second" "why it failed"
skip "third" "not here"
"""
_STATUS = {"pass": "PASS", "skip": "SKIP", "crashed": "ERROR"}  # kunit_json's names; the rest is FAIL


@pytest.fixture(scope="session")
def kunit_tool() -> Path:
    tarball = Path("/usr/src/linux-source-6.12.tar.xz")
    require(tarball.is_file(), f"Debian's linux-source-6.12 ({tarball}), for the kernel's kunit.py")
    from dbgscaffold.kernel_build import source_for

    tool = source_for("6.12") / "tools" / "testing" / "kunit" / "kunit.py"
    assert tool.is_file(), tool
    return tool


def kunit_parse(tool: Path, text: str, tmp_path: Path) -> tuple[list[tuple[str, str]], str]:
    """(each leaf test as (path, status), kunit.py's printed output) for `text`."""
    src, out = tmp_path / "in.ktap", tmp_path / "kunit.json"
    src.write_text(text)
    # bounded: the layout this guards against made the parser print [CRASHED] forever
    proc = subprocess.run([sys.executable, str(tool), "parse", f"--json={out}", str(src)], capture_output=True, text=True,
                          timeout=60, cwd=tool.parent, check=False)
    assert out.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]

    def leaves(group: dict, path: str) -> list[tuple[str, str]]:
        found = [(f"{path}/{c['name']}", c["status"]) for c in group["test_cases"]]
        for sub in group["sub_groups"]:
            found += leaves(sub, f"{path}/{sub['name']}")
        return found

    return sorted(leaves(json.loads(out.read_text()), "")), proc.stdout


def our_leaves(doc: ktap.KtapDocument, path: str = "") -> list[tuple[str, str]]:
    found = []
    for t in doc.tests:
        if t.subtests is not None and t.subtests.tests:
            found += our_leaves(t.subtests, f"{path}/{t.name}")
        else:
            found.append((f"{path}/{t.name}", _STATUS.get(t.status, "FAIL")))
    return sorted(found)


def same_reading(tool: Path, text: str, tmp_path: Path) -> list[tuple[str, str]]:
    theirs, printed = kunit_parse(tool, text, tmp_path)
    doc = ktap.parse(text)
    assert not doc.problems, doc.problems
    assert theirs == our_leaves(doc), printed[-3000:]
    assert "[CRASHED]" not in printed and "[ERROR]" not in printed, printed[-3000:]
    return theirs


def test_test_ktap_and_its_logs_read_alike_by_kunit_parser(kunit_tool, tmp_path):
    """One module (streamed), then two with one failing to build (written whole): stdout is
    one KTAP document each time, every module a subtest, a tests/*.sh a subtest of it."""
    series = require_6_1()
    mine = new_module(tmp_path, "mine")
    (mine / "tests").mkdir()
    (mine / "tests" / "own.sh").write_text(USER_TEST)
    (mine / "tests" / "own.sh").chmod(0o755)

    r = run_cli("test", str(mine), "--kernel", series, "--ktap", "--keep-logs", str(tmp_path / "logs"))
    assert r.exit_code == 1, r.output
    assert r.stdout.startswith("KTAP version 1\n1..1\n") and "│" not in r.stdout, r.stdout[:500]  # tables: stderr
    leaves = same_reading(kunit_tool, r.stdout, tmp_path)
    run = next(p for p, _ in leaves if p.startswith("/mine on ")).split("/")[1]  # "mine on <release>"
    assert (f"/{run}/tests/own.sh/second", "FAIL") in leaves and (f"/{run}/tests/own.sh/third", "SKIP") in leaves
    assert (f"/{run}/insmod mine", "PASS") in leaves
    kept = same_reading(kunit_tool, (tmp_path / "logs" / "results.log").read_text(), tmp_path)
    assert ("/tests/own.sh/first", "PASS") in kept

    broken = new_module(tmp_path, "broken")
    c = broken / "broken_debugfs.c"
    c.write_text(c.read_text().replace("MODULE_LICENSE", "MODULE_LICENSE(;", 1))
    r = run_cli("test", str(mine), str(broken), "--kernel", series, "--ktap")
    assert r.exit_code == 3, r.output
    assert r.stdout.startswith("KTAP version 1\n1..2\n"), r.stdout[:500]
    leaves = same_reading(kunit_tool, r.stdout, tmp_path)
    assert (f"/broken on {run.removeprefix('mine on ')}", "FAIL") in leaves
    assert sum(p.startswith(f"/{run}/") for p, _ in leaves) > 20

    r = run_cli("test", str(mine), str(broken), "--kernel", "9.99", "--ktap")  # stopped before any run: still one document
    assert r.exit_code != 0 and r.stdout.startswith("KTAP version 1\n1..2\n"), r.output
    assert same_reading(kunit_tool, r.stdout, tmp_path) == [("/broken (no kernel)", "FAIL"), ("/mine (no kernel)", "FAIL")]


def test_a_labs_checks_read_alike_by_kunit_parser(kunit_tool, tmp_path):
    """A lab's checks are all scripts: each a subtest (debugfs-fops, visible and hidden)."""
    require_6_1()
    from dbgscaffold.lab.engine import run_projects
    from dbgscaffold.lab.manifest import find_lab
    from dbgscaffold.lab.project import write_project
    from dbgscaffold.vm import images

    lab = find_lab("debugfs-fops")
    write_project(lab, tmp_path / "sol", solution=True)
    (o,) = run_projects(lab, [("sol", tmp_path / "sol")], images.pair_for("6.1"), hidden=True)
    leaves = same_reading(kunit_tool, o.run.results, tmp_path)
    assert len(leaves) > len(o.score.checks) and all(s in ("PASS", "SKIP") for _, s in leaves), leaves
