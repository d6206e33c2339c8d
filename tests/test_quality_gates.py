"""The generated C meets the kernel's own bar, on real tools.

For the classic default and for a spec that uses every type, against Debian's
6.1 headers and the 6.12 headers from bookworm-backports: a W=1 build with
sparse (C=2) prints zero warnings, and checkpatch.pl --strict reports zero
errors, warnings and checks.  The last tests prove each gate can fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import KERNEL_SERIES, REPO, require_tools, run_cli
from dbgscaffold.checkpatch import run_checkpatch
from dbgscaffold.kbuild import build
from dbgscaffold.lint import source_files

pytestmark = pytest.mark.kbuild

SPECS = {
    "classic": None,  # `dbgscaffold new mydebug`, no spec
    "every-type": REPO / "generator" / "specs" / "example.toml",
}


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for label, spec in SPECS.items():
        dest = tmp_path_factory.mktemp(label) / "project"
        args = ["new", "mydebug"] if spec is None else ["new", "--spec", str(spec)]
        result = run_cli(*args, "-o", str(dest))
        assert result.exit_code == 0, result.output
        out[label] = dest
    return out


def _built(project: Path, headers, tmp_path: Path):
    require_tools("make", "gcc", "sparse")
    work = tmp_path / "build"
    shutil.copytree(project, work)
    return work, build(work, headers.build_dir, extra_warnings=True, sparse=True)


@pytest.mark.parametrize("series", KERNEL_SERIES)
@pytest.mark.parametrize("label", SPECS)
def test_builds_with_zero_warnings_under_w1_and_sparse(projects, kernel_headers, series, label, tmp_path):
    work, result = _built(projects[label], kernel_headers[series], tmp_path)
    assert result.ok, result.output
    assert result.diagnostics == [], "\n".join(map(str, result.diagnostics))
    assert "CHECK" in result.output, "sparse did not run (no CHECK lines):\n" + result.output
    ko = next(work.glob("*.ko"))
    require_tools("modinfo")
    info = subprocess.run(["modinfo", str(ko)], capture_output=True, text=True, check=True).stdout
    assert "license:        GPL" in info
    assert f"vermagic:       {kernel_headers[series].release}" in info
    assert "description:" in info and "version:" in info and "author:" in info


@pytest.mark.parametrize("label", SPECS)
def test_checkpatch_strict_reports_nothing(projects, checkpatch_of_series, label):
    project = projects[label]
    files = [p.relative_to(project) for p in source_files(project)]
    assert any(f.suffix == ".c" for f in files) and any(f.suffix == ".h" for f in files)
    result = run_checkpatch(files, checkpatch_of_series, cwd=project)
    assert result.findings == [], "\n".join(map(str, result.findings))
    assert result.lines_checked > 100


def test_every_type_project_has_user_files_and_compat_probe(projects):
    project = projects["every-type"]
    assert sorted(p.name for p in (project / "user").glob("*.c")) == ["control.c", "showdev_limit.c", "showdev_state.c", "stats.c", "threshold.c"]
    kbuild = (project / "Kbuild").read_text()
    assert "user/stats.o" in kbuild and "user/control.o" in kbuild
    assert "DBGSCAFFOLD_HAVE_DEBUGFS_U32_ARRAY" in kbuild
    assert "LINUX_VERSION_CODE" not in "".join(p.read_text() for p in source_files(project))


# --- the gates can fail -------------------------------------------------------


def test_w1_gate_catches_an_unused_variable(projects, kernel_headers, tmp_path):
    project = tmp_path / "broken"
    shutil.copytree(projects["classic"], project)
    c_file = project / "mydebug_debugfs.c"
    c_file.write_text(c_file.read_text().replace("\treturn 0;\n}", "\tint unused;\n\n\treturn 0;\n}", 1))
    _, result = _built(project, kernel_headers["6.1"], tmp_path)
    assert any("unused" in d.message for d in result.warnings), result.output


def test_sparse_gate_catches_a_symbol_that_should_be_static(projects, kernel_headers, tmp_path):
    project = tmp_path / "broken"
    shutil.copytree(projects["classic"], project)
    c_file = project / "mydebug_debugfs.c"
    c_file.write_text(c_file.read_text().replace("static u8 mydebug_a", "u8 mydebug_a", 1))
    _, result = _built(project, kernel_headers["6.1"], tmp_path)
    assert any(d.tool == "sparse" and "static" in d.message for d in result.warnings), result.output


def test_checkpatch_gate_catches_style_problems(projects, checkpatch_script, tmp_path):
    project = tmp_path / "broken"
    shutil.copytree(projects["classic"], project)
    c_file = project / "mydebug_debugfs.c"
    c_file.write_text(c_file.read_text().replace("\treturn 0;", "        return 0 ;", 1))
    result = run_checkpatch([Path("mydebug_debugfs.c")], checkpatch_script, cwd=project)
    types = {f.type for f in result.findings}
    assert {"CODE_INDENT", "SPACING"} <= types, result.output


def test_the_projects_own_make_checkpatch_runs_on_our_sources_only(projects, kernel_headers, checkpatch_script, tmp_path):
    """The generated Makefile: after a build (kbuild writes NAME.mod.c beside the sources),
    `make checkpatch` checks only our files, with $(KDIR)'s checkpatch.pl or, where the
    headers have none (Debian's), through `dbgscaffold lint`."""
    import os
    import sys

    require_tools("make", "gcc")
    work = tmp_path / "p"
    shutil.copytree(projects["classic"], work)
    kdir = f"KDIR={kernel_headers['6.1'].build_dir}"
    assert subprocess.run(["make", "-C", str(work), kdir], capture_output=True, check=False).returncode == 0
    assert (work / "mydebug.mod.c").is_file()
    given = subprocess.run(["make", "-C", str(work), kdir, "checkpatch", f"CHECKPATCH={checkpatch_script}"],
                           capture_output=True, text=True, check=False)
    assert given.returncode == 0, given.stdout + given.stderr
    assert "mydebug_debugfs.c" in given.stdout and ".mod.c" not in given.stdout
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # where the dbgscaffold script is
    found = subprocess.run(["make", "-C", str(work), kdir, "checkpatch"], capture_output=True, text=True, check=False,
                           env={**os.environ, "PATH": path})
    assert found.returncode == 0 and "dbgscaffold lint --no-build ." in found.stdout and "checkpatch --strict: clean" in found.stdout, (
        found.stdout + found.stderr)
    without = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "dbgscaffold").exists())
    bare = subprocess.run(["make", "-C", str(work), kdir, "checkpatch"], capture_output=True, text=True, check=False,
                          env={**os.environ, "PATH": without})
    assert bare.returncode != 0 and "Fix: make checkpatch CHECKPATCH=" in bare.stdout + bare.stderr
