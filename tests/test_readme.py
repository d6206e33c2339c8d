"""The README stays true: its commands are the ones CI runs, and its
examples are what the tool prints."""

from __future__ import annotations

import re

from conftest import REPO, run_cli

README = (REPO / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    quick = README[README.index("## Quick start"): README.index("## Usage")]
    commands = re.findall(r"```sh\n(.*?)\n```", quick, flags=re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    setup, tests = commands
    assert setup.startswith("bash scripts/setup.sh && ") and "dbgscaffold new mydebug" in setup
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in ci
    assert re.search(rf"^{re.escape(tests)}$", ci, flags=re.M), "CI must run the README's test command verbatim"


def test_bad_spec_example_output_is_real(tmp_path):
    bad = next(b for b in _blocks("toml") if 'type = "strng"' in b)
    (tmp_path / "bad.toml").write_text(bad)
    console = next(b for b in _blocks("console") if "new --spec bad.toml" in b)
    expected = console.split("\n", 1)[1]
    result = run_cli("new", "--spec", "bad.toml", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_new_example_output_is_real(tmp_path):
    console = next(b for b in _blocks("console") if b.startswith("$ dbgscaffold new mydebug"))
    result = run_cli("new", "mydebug", cwd=tmp_path)
    assert result.exit_code == 0
    assert result.stdout == console.split("\n", 1)[1]
