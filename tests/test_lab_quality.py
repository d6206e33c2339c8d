"""The labs' solutions meet the project's bar on real tools: W=1 + sparse with
zero warnings on 6.1 and 6.12, checkpatch --strict silent; the skeletons
compile on both (with warnings allowed: unused code waits for the student)."""

from __future__ import annotations

import pytest

from conftest import KERNEL_SERIES, require_tools
from dbgscaffold.checkpatch import run_checkpatch
from dbgscaffold.kbuild import build
from dbgscaffold.lab.manifest import find_lab
from dbgscaffold.lab.project import write_project
from test_quality_gates import _built

pytestmark = pytest.mark.kbuild

LABS = ("debugfs-basics", "debugfs-fops")


@pytest.mark.parametrize("series", KERNEL_SERIES)
@pytest.mark.parametrize("lab", LABS)
def test_solution_builds_w1_sparse_clean(kernel_headers, series, lab, tmp_path):
    work, result = _built(find_lab(lab).solution, kernel_headers[series], tmp_path)
    assert result.ok, result.output
    assert result.diagnostics == [], "\n".join(map(str, result.diagnostics))
    assert "CHECK" in result.output and (work / f"{find_lab(lab).module}.ko").is_file()


@pytest.mark.parametrize("lab", LABS)
def test_solution_is_checkpatch_strict_clean(checkpatch_of_series, lab):
    solution = find_lab(lab).solution
    files = sorted(p.relative_to(solution) for p in solution.glob("*.[ch]"))
    result = run_checkpatch(files, checkpatch_of_series, cwd=solution)
    assert result.findings == [], "\n".join(map(str, result.findings))
    assert result.lines_checked > 100


@pytest.mark.parametrize("series", KERNEL_SERIES)
@pytest.mark.parametrize("lab", LABS)
def test_skeleton_compiles(kernel_headers, series, lab, tmp_path):
    require_tools("make", "gcc")
    write_project(find_lab(lab), tmp_path / "skel")
    result = build(tmp_path / "skel", kernel_headers[series].build_dir)
    assert result.ok and not result.errors, result.output


def test_the_gate_can_fail(kernel_headers, tmp_path):
    """A solution with a stray unused variable is not W=1 clean: the first test would catch it."""
    require_tools("make", "gcc", "sparse")
    write_project(find_lab("debugfs-basics"), tmp_path / "sol", solution=True)
    c = tmp_path / "sol" / "mydebug.c"
    c.write_text(c.read_text().replace("static u8 a = 5;", "static u8 a = 5;\nstatic int unused_thing;"))
    work, result = _built(tmp_path / "sol", kernel_headers["6.1"], tmp_path / "b")
    assert any("unused_thing" in d.message for d in result.diagnostics)
