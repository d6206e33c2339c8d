"""`dbgscaffold test` on hand-written modules (tests/data/handwritten, not generated), on both Debian kernels.

Their checks are discovered at run time and the report names every file tested;
two modules in one directory load in dependency order; a [test] table passes
parameters; and a module that misbehaves in a way only discovery can see (a write
handler that refuses its own value, a file left behind after rmmod, a
world-writable file, a bad parameter, a symbol nobody exports) fails with the
right exit code and says why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_cli, run_json
from test_vm_module import series  # noqa: F401 - a fixture: each Debian kernel, skipped (or failed in CI) when missing

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent / "data" / "handwritten"


def copy(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


def subtests(run: dict, prefix: str) -> dict[str, str]:
    """{name: status} of the subtest results of the check whose name starts with `prefix`."""
    check = next(c for c in run["checks"] if c["name"].startswith(prefix))
    return {s["name"]: s["status"] for s in check["subtests"]}


def test_hand_written_modules_pass_with_their_discovered_checks_listed(series, tmp_path):
    knobs, pair, hello = copy("knobs", tmp_path), copy("pair", tmp_path), copy("hello", tmp_path)
    code, doc, out = run_json(tmp_path, str(knobs), str(pair), str(hello), "--kernel", series)
    assert code == 0, out
    runs = {r["module"]: r for r in doc["runs"]}
    assert [r["exit_code"] for r in doc["runs"]] == [0, 0, 0]

    k = runs["knobs"]
    names = [c["name"] for c in k["checks"]]
    assert names[0] == "insmod knobs debug_value=7" and "tests/level.sh" in names  # the [test] params reached insmod
    found = subtests(k, "discovered: what knobs created")
    for path, mode in (("/sys/kernel/debug/knobs/level", 644), ("/sys/kernel/debug/knobs/name", 444),
                       ("/sys/kernel/debug/knobs/threshold", 600), ("/sys/kernel/debug/knobs/regs/ctrl", 644),
                       ("/proc/knobs", 444), ("/sys/module/knobs/parameters/debug_value", 644)):
        assert found.get(f"{path} (mode {mode})") == "pass", found
    assert found["/sys/kernel/debug/knobs/ (directory, mode 755)"] == "pass"
    writes = subtests(k, "discovered: writable numbers")
    assert writes == {
        "/sys/kernel/debug/knobs/enabled takes its value Y back": "pass",
        "/sys/kernel/debug/knobs/level takes its value 7 back": "pass",  # debug_value=7 set it
        "/sys/kernel/debug/knobs/regs/ctrl takes its value 0x00000001 back": "pass",
        "/sys/kernel/debug/knobs/threshold takes its value 10 back": "pass",
        "/sys/module/knobs/parameters/debug_value takes its value 7 back": "pass",
    }, writes
    assert "/sys/kernel/debug/knobs/stats reads" in subtests(k, "discovered: every readable file reads")

    p = [c["name"] for c in runs["pair"]["checks"]]
    assert p[:2] == ["insmod pair_provider", "insmod pair_consumer"]  # Kbuild lists the consumer first
    assert p.index("rmmod pair_consumer") < p.index("rmmod pair_provider")
    assert "/sys/kernel/debug/pair_consumer/sum (mode 444)" in subtests(runs["pair"], "discovered: what")

    h = subtests(runs["hello"], "discovered: what hello created")
    assert h == {"nothing in debugfs, /proc or module parameters": "skip"}
    assert "pr_info" not in out and "hello on " in out  # the report table names the run


BROKEN = {
    # a write handler that refuses the value its read gives: only the write-back check sees it
    "refuses": ('static u32 v = 4;\n'
                'static int v_get(void *d, u64 *val) { *val = v; return 0; }\n'
                'static int v_set(void *d, u64 val) { return val == 4 ? -EINVAL : 0; }\n'
                'DEFINE_DEBUGFS_ATTRIBUTE(v_fops, v_get, v_set, "%llu\\n");\n',
                'debugfs_create_file_unsafe("v", 0644, dir, NULL, &v_fops);', "",
                "discovered: writable numbers", "/sys/kernel/debug/{m}/v takes its value 4 back"),
    # a file created at the root and never removed: still there after rmmod
    "leaves": ("static u32 v = 1;\n",
               'debugfs_create_u32("v", 0444, dir, &v); debugfs_create_u32("{m}_stray", 0444, NULL, &v);', "",
               "everything {m} created is gone", "still there: /sys/kernel/debug/{m}_stray"),
    # any user may write it
    "open": ("static u32 v = 1;\n", 'debugfs_create_u32("v", 0666, dir, &v);', "",
             "discovered: what {m} created", "/sys/kernel/debug/{m}/v (mode 666)"),
}


def broken_module(tmp_path: Path, m: str, decls: str, create: str, exit_extra: str = "") -> Path:
    d = tmp_path / m
    d.mkdir()
    (d / "Kbuild").write_text(f"obj-m := {m}.o\n")
    (d / f"{m}.c").write_text(
        "// SPDX-License-Identifier: GPL-2.0\n#include <linux/debugfs.h>\n#include <linux/module.h>\n\n"
        f"static struct dentry *dir;\n{decls}\n"
        f"static int __init m_init(void)\n{{\n\tdir = debugfs_create_dir(\"{m}\", NULL);\n\t{create.format(m=m)}\n\treturn 0;\n}}\n\n"
        f"static void __exit m_exit(void)\n{{\n\tdebugfs_remove_recursive(dir);{exit_extra}\n}}\n\n"
        "module_init(m_init);\nmodule_exit(m_exit);\nMODULE_LICENSE(\"GPL\");\n")
    return d


def test_what_only_discovery_can_see_fails_its_check(series, tmp_path):
    projects = [broken_module(tmp_path, name, decls, create) for name, (decls, create, *_ ) in BROKEN.items()]
    code, doc, out = run_json(tmp_path, *map(str, projects), "--kernel", series)
    assert code == 1, out
    for run, (name, (_, _, _, check, says)) in zip(doc["runs"], BROKEN.items()):
        assert run["module"] == name and run["exit_code"] == 1, run["verdict"]
        failed = [c for c in run["checks"] if c["status"] == "fail"]
        assert [c["name"] for c in failed] == [next(c["name"] for c in run["checks"] if c["name"].startswith(check.format(m=name)))]
        shown = [s["name"] for s in failed[0]["subtests"] if s["status"] == "fail"] + failed[0]["diagnostics"]
        assert any(says.format(m=name) in x for x in shown), shown


def test_a_module_that_does_not_load_says_why(series, tmp_path):
    projects = []
    for name, toml in (("bad_value", '[test]\nparams = "debug_value=abc"\n'), ("typo", '[test]\nparams = "debug_valu=7"\n')):
        projects.append(copy("knobs", tmp_path / name))
        (projects[-1] / "dbgscaffold.toml").write_text(toml)
    alone = copy("pair", tmp_path)  # the consumer without the provider that exports its symbol
    (alone / "dbgscaffold.toml").write_text('[test]\nmodules = ["pair_consumer"]\n')
    code, doc, out = run_json(tmp_path, *map(str, projects), str(alone), "--kernel", series)
    assert code == 1, out
    for run, says, fix in ((doc["runs"][0], "`abc' invalid for parameter `debug_value'", "must match its module_param()s"),
                           (doc["runs"][1], "knobs: unknown parameter 'debug_valu' ignored", "it has no such parameter"),
                           (doc["runs"][2], "Unknown symbol pair_provider_add", "load that module first")):
        first = run["checks"][0]
        assert first["status"] == "fail" and first["name"].startswith("insmod "), first
        text = "\n".join(first["diagnostics"])
        assert says in text and "Fix: " in text and fix in text, text


def test_a_directory_that_is_no_module_project_is_exit_2_before_any_vm(tmp_path):
    (tmp_path / "Makefile").write_text("all:\n\tgcc -o x x.c\n")
    (tmp_path / "x.c").write_text("int main(void) { return 0; }\n")
    r = run_cli("test", str(tmp_path))
    assert r.exit_code == 2 and "names no obj-m" in r.stderr and "Fix:" in r.stderr and "using " not in r.stderr


def test_test_modules_naming_a_module_the_build_does_not_make_is_exit_2(series, tmp_path):
    knobs = copy("knobs", tmp_path)
    (knobs / "dbgscaffold.toml").write_text('[test]\nmodules = ["knobs", "other"]\n')
    code, doc, out = run_json(tmp_path, str(knobs), "--kernel", series)
    assert code == 2 and "[test] modules names 'other', but the build made knobs.ko" in out and "Fix:" in out, out
    assert doc["runs"][0]["build_failure"]["message"].endswith("[test] modules names 'other', but the build made knobs.ko. "
                                                              "Fix: list the modules the Kbuild file builds.")
