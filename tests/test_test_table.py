"""The [test] table of dbgscaffold.toml and what `dbgscaffold test` makes of a directory (pure, no VM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbgscaffold.errors import UserError
from dbgscaffold.problems import SpecError
from dbgscaffold.runner.project import load_project
from dbgscaffold.spec import parse_spec
from dbgscaffold.test_table import TestTable, parse_test_table


def parse(text: str):
    import tomllib

    return parse_test_table(tomllib.loads(text).get("test"), text, "t.toml")


def test_every_key_parsed():
    table, problems = parse('[test]\nparams = "debug_value=3 name=x"\nmodules = ["a", "b"]\ntimeout = 90\ndiscover = false\n')
    assert problems == [] and table == TestTable((("", "debug_value=3 name=x"),), ("a", "b"), 90.0, False)
    assert table.present and table.params_for("a", 1) == "debug_value=3 name=x"
    assert table.params_for("a", 2) is None  # one string for two modules: which one?


def test_params_per_module():
    table, problems = parse('[test]\nmodules = ["pair_provider", "pair_consumer"]\nparams = { pair_consumer = "n=3" }\n')
    assert problems == []
    assert table.params_for("pair_consumer", 2) == "n=3" and table.params_for("pair_provider", 2) == ""


def test_absent_table_is_the_default():
    table, problems = parse('[module]\nname = "m"\n')
    assert problems == [] and table == TestTable() and not table.present and table.discover is None


@pytest.mark.parametrize("text, line, says", [
    ('[test]\nparam = "x=1"\n', 2, "unknown key 'param'"),
    ('[test]\nparams = 3\n', 2, "'params' must be a string or a table"),
    ('[test]\nparams = "x=1; reboot"\n', 2, "has quotes, shell or control characters"),
    ('[test]\nparams = { "bad name" = "x=1" }\n', 2, "is not a module name"),
    ('[test]\nmodules = []\n', 2, "'modules' must be a non-empty list of module names"),
    ('[test]\nmodules = ["a", "a"]\n', 2, "names a module twice"),
    ('[test]\n\ntimeout = 0\n', 3, "'timeout' must be a number of seconds"),
    ('[test]\ntimeout = true\n', 2, "'timeout' must be a number of seconds"),
    ('[test]\ndiscover = "yes"\n', 2, "'discover' must be true or false"),
    ('[test]\nmodules = ["a"]\nparams = { b = "x=1" }\n', 3, "params names 'b', which 'modules' does not list"),
])
def test_each_problem_has_its_line_and_a_fix(text, line, says):
    _, problems = parse(text)
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.line == line and says in p.message and p.fix and str(p).startswith(f"t.toml:{line}: error: [test]: ")


def test_a_generated_spec_may_carry_a_test_table():
    spec = parse_spec('[module]\nname = "m"\n[[entry]]\npath = "a"\ntype = "u8"\n[test]\nparams = "x=1"\ndiscover = true\n')
    assert spec.test.discover is True and spec.test.params_for("m", 1) == "x=1"
    with pytest.raises(SpecError, match=r"t.toml:4: error: \[test\]: unknown key 'foo'"):
        parse_spec('[module]\nname = "m"\n[test]\nfoo = 1\n', "t.toml")


# ---------------------------------------------------------------- directories


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_hand_written_module_needs_no_spec(tmp_path):
    p = load_project(write(tmp_path, {"Makefile": "obj-m += hello.o\nall:\n\tmake -C x M=$(PWD) modules\n", "hello.c": ""}))
    assert p.spec is None and p.discover and p.name == tmp_path.name and p.test == TestTable()
    p = load_project(write(tmp_path, {"Kbuild": "obj-$(CONFIG_X) := a.o\n"}))  # a Kbuild wins over the Makefile
    assert p.spec is None


def test_a_test_only_spec(tmp_path):
    write(tmp_path, {"Kbuild": "obj-m := knobs.o\n", "dbgscaffold.toml": '[test]\nparams = "debug_value=7"\ndiscover = false\n'})
    p = load_project(tmp_path)
    assert p.spec is None and p.test.params_for("knobs", 1) == "debug_value=7" and not p.discover


@pytest.mark.parametrize("files, says", [
    ({}, "not a module directory: no Kbuild and no Makefile"),
    ({"Makefile": "all:\n\tgcc x.c\n"}, "the Makefile names no obj-m"),
    ({"Kbuild": "obj-m := a.o\n", "dbgscaffold.toml": "[tset]\n"}, "unknown top-level key 'tset'"),
    ({"Kbuild": "obj-m := a.o\n", "dbgscaffold.toml": "[test\n"}, "TOML syntax error"),
    ({"Kbuild": "obj-m := a.o\n", "dbgscaffold.toml": "[test]\ntimeout = -1\n"}, "'timeout' must be a number"),
])
def test_what_is_no_project_says_what_to_do(tmp_path, files, says):
    with pytest.raises(UserError) as info:
        load_project(write(tmp_path, files))
    assert info.value.exit_code == 2 and says in str(info.value) and "Fix: " in str(info.value)


def test_one_params_string_cannot_serve_two_modules(tmp_path):
    from dbgscaffold.kbuild import BuildResult
    from dbgscaffold.runner.build import BuildFailed, Built, BuiltModule

    write(tmp_path, {"Kbuild": "obj-m := a.o b.o\n", "dbgscaffold.toml": '[test]\nparams = "x=1"\n'})
    project = load_project(tmp_path)
    two = Built(tuple(BuiltModule(n, tmp_path / f"{n}.ko", tmp_path / f"{n}.ko", ()) for n in ("a", "b")), 0.0, BuildResult(0, "", 0.0))
    with pytest.raises(BuildFailed) as info:
        project.params(two, "6.1.0-1-amd64")
    assert info.value.exit_code == 2 and "params is one string, but the build makes 2 modules (a, b)" in str(info.value)
    assert 'Fix: params = { a = "..." }' in str(info.value)
    assert project.params(Built(two.modules[:1], 0.0, two.result), "r") == ["x=1"]
