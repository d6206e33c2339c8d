"""`dbgscaffold lint` end to end: real checkpatch, real kbuild on every kernel."""

from __future__ import annotations

import pytest

from conftest import require_tools, run_cli

pytestmark = pytest.mark.kbuild


def test_lint_is_clean_on_the_classic_module(tmp_path, kernel_headers, checkpatch_script):
    require_tools("make", "gcc", "sparse")
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "m")).exit_code == 0
    result = run_cli("lint", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    assert "checkpatch --strict: clean" in result.stdout
    for headers in kernel_headers.values():
        assert f"build {headers.release} W=1 C=2: clean" in result.stdout
    assert not list((tmp_path / "m").glob("*.o")), "lint must not build inside the project"


def test_lint_exits_1_and_names_the_finding(tmp_path, kernel_headers, checkpatch_script):
    require_tools("make", "gcc", "sparse")
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "m")).exit_code == 0
    c_file = tmp_path / "m" / "mydebug_debugfs.c"
    c_file.write_text(c_file.read_text().replace("static u8 mydebug_a", "u8 mydebug_a", 1))
    result = run_cli("lint", str(tmp_path / "m"), "--kdir", str(kernel_headers["6.1"].build_dir))
    assert result.exit_code == 1, result.output
    assert "mydebug_debugfs.c" in result.stdout and "static" in result.stdout


def test_lint_exits_3_when_the_build_fails(tmp_path, kernel_headers):
    require_tools("make", "gcc")
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "m")).exit_code == 0
    c_file = tmp_path / "m" / "mydebug_debugfs.c"
    c_file.write_text(c_file.read_text() + "\nthis is not C;\n")
    result = run_cli("lint", str(tmp_path / "m"), "--no-checkpatch", "--kdir", str(kernel_headers["6.1"].build_dir))
    assert result.exit_code == 3, result.output
    assert "FAILED" in result.stdout and "error" in result.stdout


def test_lint_rejects_a_directory_without_sources(tmp_path):
    result = run_cli("lint", str(tmp_path))
    assert result.exit_code == 2
    assert "no C sources" in result.stderr
    assert result.exception is None
