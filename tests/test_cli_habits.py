"""CLI habits (issue 15): NO_COLOR, and shell completion of lab names, profiles and kernels."""

from __future__ import annotations

import re

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from conftest import run_cli
from dbgscaffold.cli import cli
from dbgscaffold.kconfig.profiles import available_profiles
from dbgscaffold.vm import images


def completions(*words: str) -> list[str]:
    """What <TAB> offers after `dbgscaffold WORDS...` (the last word is being typed)."""
    complete = ShellComplete(cli, {}, "dbgscaffold", "_DBGSCAFFOLD_COMPLETE")
    return [c.value for c in complete.get_completions(list(words[:-1]), words[-1])]


def test_no_color_drops_clicks_styles_even_on_a_terminal():
    runner = CliRunner()
    styled = runner.invoke(cli, ["doctor"], color=True)  # color=True: as on a terminal
    plain = runner.invoke(cli, ["doctor"], color=True, env={"NO_COLOR": "1"})
    assert "\x1b[" in styled.output, "the check cannot see escapes: doctor prints none any more"
    assert "\x1b[" not in plain.output and plain.exit_code == styled.exit_code
    assert plain.output == re.sub(r"\x1b\[[0-9;]*m", "", styled.output)


def test_lab_names_complete():
    assert completions("lab", "start", "debugfs-") == ["debugfs-basics", "debugfs-fops"]
    assert "systemtap" in completions("lab", "grade", "--lab", "")
    assert completions("lab", "start", "no-such-") == []


def test_profiles_complete():
    assert completions("check-config", "-p", "") == available_profiles()
    assert completions("kernel", "build", "--profile", "deb") == ["debug", "debugfs"]


def test_kernels_complete_by_series_and_release():
    offered = completions("test", "--kernel", "")
    for pair in images.scan_pairs().pairs:
        assert pair.release in offered and ".".join(pair.release.split(".")[:2]) in offered
    six_one = completions("lab", "check", "--kernel", "6.1")
    assert all(x.startswith("6.1") for x in six_one) and ("6.1" in six_one) == any(p.release.startswith("6.1.") for p in images.scan_pairs().pairs)


@pytest.mark.slow
def test_quiet_shows_only_what_failed_and_verbose_everything(tmp_path):
    from test_vm_module import new_module, require_6_1

    series = require_6_1()
    mine = new_module(tmp_path, "mine")
    (mine / "tests").mkdir()
    script = mine / "tests" / "own.sh"
    script.write_text("".join(f'diag "note {i}"\n' for i in range(6)) + 'not_ok "second" "why it failed"\n')
    script.chmod(0o755)
    normal, quiet, verbose = (run_cli("test", str(mine), "--kernel", series, *flag) for flag in ((), ("-q",), ("-v",)))
    assert normal.exit_code == quiet.exit_code == verbose.exit_code == 1, normal.output
    assert "insmod mine" in normal.stdout and "insmod mine" not in quiet.stdout
    assert "tests/own.sh" in quiet.stdout and "1 of 24 checks failed" in quiet.stdout
    assert "note 5" in verbose.stdout and "note 5" not in normal.stdout  # the table shows a check's first 4 lines
