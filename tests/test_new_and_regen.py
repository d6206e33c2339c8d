"""`dbgscaffold new` and `regen` on the filesystem (no kernel needed)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, run_cli

EXAMPLE = REPO / "generator" / "specs" / "example.toml"
GENERATED = {
    ".gitignore", "Kbuild", "Makefile", "README.md", "dkms.conf",
    "mydebug_compat.h", "mydebug_debugfs.c", "mydebug_debugfs.h",
}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_new_default_is_the_classic_example(tmp_path):
    result = run_cli("new", "mydebug", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    project = tmp_path / "mydebug"
    assert _files(project) == GENERATED | {"dbgscaffold.toml", ".dbgscaffold-manifest.json"}
    spec = tomllib.loads((project / "dbgscaffold.toml").read_text())
    assert spec["module"]["name"] == "mydebug"
    assert [(e["path"], e["type"]) for e in spec["entry"]] == [("a", "u8"), ("b", "blob"), ("subdir/c", "string")]
    c = (project / "mydebug_debugfs.c").read_text()
    assert c.startswith("// SPDX-License-Identifier: GPL-2.0\n")
    assert '#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt' in c
    assert 'root = debugfs_create_dir("mydebug", NULL);' in c and "mydebug_root = root;" in c
    assert 'debugfs_create_u8("a", 0644, root, &mydebug_a);' in c
    assert 'debugfs_create_blob("b", 0444, root, &mydebug_b);' in c
    assert 'd[0] = debugfs_create_dir("subdir", root);' in c and 'debugfs_create_file("c", 0644, d[0], ' in c
    assert "debugfs_remove_recursive(mydebug_root);" in c
    assert "static u8 mydebug_a = 5;" in c and '"Hello world!\\n"' in c and '"c data\\n"' in c
    for macro in ("MODULE_LICENSE", "MODULE_AUTHOR", "MODULE_DESCRIPTION", "MODULE_VERSION"):
        assert macro + "(" in c
    # Every file_operations is static const and owned by the module.
    assert c.count("struct file_operations") == c.count("static const struct file_operations")
    assert c.count("static const struct file_operations") == c.count(".owner = THIS_MODULE")


def test_new_name_sets_module_and_root(tmp_path):
    assert run_cli("new", "othermod", cwd=tmp_path).exit_code == 0
    c = (tmp_path / "othermod" / "othermod_debugfs.c").read_text()
    assert 'root = debugfs_create_dir("othermod", NULL);' in c and "othermod_root = root;" in c
    kbuild = (tmp_path / "othermod" / "Kbuild").read_text()
    assert "obj-m := othermod.o" in kbuild and "othermod-y := othermod_debugfs.o" in kbuild


def test_name_on_the_command_line_overrides_the_spec(tmp_path):
    result = run_cli("new", "renamed", "--spec", str(EXAMPLE), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    copied = (tmp_path / "renamed" / "dbgscaffold.toml").read_text()
    assert tomllib.loads(copied)["module"]["name"] == "renamed"
    assert "# a lower-case C identifier" in copied  # comments survive the rewrite
    assert (tmp_path / "renamed" / "renamed_debugfs.c").is_file()


def test_output_option_and_missing_parents(tmp_path):
    dest = tmp_path / "a" / "b" / "mod"
    assert run_cli("new", "mydebug", "-o", str(dest)).exit_code == 0
    assert (dest / "Kbuild").is_file()


def test_generated_files_cover_the_issue_list(tmp_path):
    assert run_cli("new", "mydebug", cwd=tmp_path).exit_code == 0
    p = tmp_path / "mydebug"
    makefile = (p / "Makefile").read_text()
    assert "KDIR ?= /lib/modules/$(shell uname -r)/build" in makefile
    for target in ("all:", "modules:", "clean:", "modules_install:", "check:", "checkpatch:"):
        assert f"\n{target}" in makefile
    assert "W=1 C=2" in makefile and "CHECKPATCH ?=" in makefile
    dkms = (p / "dkms.conf").read_text()
    for key in ('PACKAGE_NAME="mydebug"', 'PACKAGE_VERSION="0.1.0"', 'BUILT_MODULE_NAME[0]="mydebug"',
                "DEST_MODULE_LOCATION[0]=", 'AUTOINSTALL="yes"', 'BUILD_EXCLUSIVE_CONFIG="CONFIG_DEBUG_FS"'):
        assert key in dkms
    readme = (p / "README.md").read_text()
    assert "| `a` | u8 | 0644 | `5` |" in readme
    assert "| `b` | blob | 0444 | `Hello world!\\n` |" in readme
    assert "| `subdir/c` | string | 0644 | `c data\\n` |" in readme
    assert "insmod mydebug.ko" in readme and "rmmod mydebug" in readme
    assert "*.ko" in (p / ".gitignore").read_text()


def test_existing_non_empty_directory_is_refused_without_force(tmp_path):
    dest = tmp_path / "mydebug"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    result = run_cli("new", "mydebug", cwd=tmp_path)
    assert result.exit_code == 2
    assert "not empty" in result.stderr and "--force" in result.stderr
    assert _files(dest) == {"keep.txt"}
    assert sorted(os.listdir(tmp_path)) == ["mydebug"], "no staging directory may be left behind"


def test_force_replaces_the_directory(tmp_path):
    dest = tmp_path / "mydebug"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    assert run_cli("new", "mydebug", "--force", cwd=tmp_path).exit_code == 0
    assert "keep.txt" not in _files(dest) and "Kbuild" in _files(dest)
    assert sorted(os.listdir(tmp_path)) == ["mydebug"]


def test_empty_existing_directory_is_fine(tmp_path):
    (tmp_path / "mydebug").mkdir()
    assert run_cli("new", "mydebug", cwd=tmp_path).exit_code == 0


def test_output_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "mydebug").write_text("x")
    result = run_cli("new", "mydebug", cwd=tmp_path)
    assert result.exit_code == 2 and "not a directory" in result.stderr


def test_invalid_spec_writes_nothing(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('[module]\nname = "m"\n\n[[entry]]\npath = "a"\ntype = "u8"\nmode = "0666"\n')
    result = run_cli("new", "--spec", str(spec), "-o", str(tmp_path / "out" / "m"))
    assert result.exit_code == 2
    assert f"{spec}:7: error: entry #1 'a': mode 0666" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.toml"]
    assert result.exception is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["new"], "NAME is required"),
        (["new", "Bad-Name"], "not a lower-case C identifier"),
        (["new", "int"], "reserved"),
        (["new", "--spec", "/nonexistent/spec.toml"], "no such file"),
        (["new", "--spec", "/"], "is a directory"),
    ],
)
def test_usage_errors_exit_2_without_traceback(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None and "Traceback" not in result.output
    assert os.listdir(tmp_path) == []


def test_binary_spec_is_refused(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_bytes(b"\xff\xfe[module]\n")
    result = run_cli("new", "--spec", str(spec), cwd=tmp_path)
    assert result.exit_code == 2 and "not UTF-8" in result.stderr


def test_group_writable_mode_warns_but_generates(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[module]\nname = "gw"\n\n[[entry]]\npath = "a"\ntype = "u8"\nmode = "0664"\n')
    result = run_cli("new", "--spec", str(spec), "-o", str(tmp_path / "gw"))
    assert result.exit_code == 0
    assert f"{spec}:7: warning: entry #1 'a': mode 0664 lets the group write" in result.stderr
    assert 'debugfs_create_u8("a", 0664,' in (tmp_path / "gw" / "gw_debugfs.c").read_text()


# --- regen -----------------------------------------------------------------------


@pytest.fixture
def showcase(tmp_path) -> Path:
    result = run_cli("new", "--spec", str(EXAMPLE), "-o", str(tmp_path / "showcase"))
    assert result.exit_code == 0, result.output
    return tmp_path / "showcase"


def test_regen_keeps_user_files_and_applies_spec_changes(showcase):
    stats = showcase / "user" / "stats.c"
    stats.write_text(stats.read_text().replace("nothing to show yet", "my own code"))
    spec = showcase / "dbgscaffold.toml"
    spec.write_text(spec.read_text().replace("value = 5\n", "value = 9\n", 1) + '\n[[entry]]\npath = "extra/info"\ntype = "seq"\n')
    result = run_cli("regen", str(showcase))
    assert result.exit_code == 0, result.output
    assert "my own code" in stats.read_text()
    assert "static u8 showcase_int_u8 = 9;" in (showcase / "showcase_debugfs.c").read_text()
    assert (showcase / "user" / "extra_info.c").is_file()
    assert "created user/extra_info.c" in result.stdout
    assert "user/extra_info.o" in (showcase / "Kbuild").read_text()


def test_regen_refuses_hand_edited_generated_files_unless_forced(showcase):
    c_file = showcase / "showcase_debugfs.c"
    c_file.write_text(c_file.read_text() + "/* hand edit */\n")
    result = run_cli("regen", str(showcase))
    assert result.exit_code == 2 and "edited by hand: showcase_debugfs.c" in result.stderr
    assert c_file.read_text().endswith("/* hand edit */\n")
    assert run_cli("regen", str(showcase), "--force").exit_code == 0
    assert "/* hand edit */" not in c_file.read_text()


def test_regen_reports_orphaned_user_files_and_drops_them_from_kbuild(showcase):
    spec = showcase / "dbgscaffold.toml"
    text = spec.read_text()
    spec.write_text(text.replace('[[entry]]\npath = "stats"\ntype = "seq"\n', ""))
    result = run_cli("regen", str(showcase))
    assert result.exit_code == 0, result.output
    assert (showcase / "user" / "stats.c").is_file()
    assert "user/stats.c is no longer used" in result.stdout
    assert "user/stats.o" not in (showcase / "Kbuild").read_text()


def test_regen_refuses_a_renamed_module(showcase):
    spec = showcase / "dbgscaffold.toml"
    spec.write_text(spec.read_text().replace('name = "showcase"', 'name = "other"'))
    result = run_cli("regen", str(showcase))
    assert result.exit_code == 2 and "module name changed" in result.stderr


def test_regen_with_an_invalid_spec_changes_nothing(showcase):
    before = {f: (showcase / f).read_bytes() for f in _files(showcase)}
    spec = showcase / "dbgscaffold.toml"
    spec.write_text(spec.read_text().replace('value = 5\n', 'value = 500\n', 1))
    result = run_cli("regen", str(showcase))
    assert result.exit_code == 2 and "out of range for u8" in result.stderr
    after = {f: (showcase / f).read_bytes() for f in _files(showcase)}
    assert {f for f in after if after[f] != before.get(f)} == {"dbgscaffold.toml"}


def test_regen_outside_a_project(tmp_path):
    result = run_cli("regen", str(tmp_path))
    assert result.exit_code == 2 and "not a dbgscaffold project" in result.stderr


def test_manifest_records_generated_files_only(showcase):
    manifest = json.loads((showcase / ".dbgscaffold-manifest.json").read_text())
    assert manifest["module"] == "showcase"
    assert "showcase_debugfs.c" in manifest["generated"]
    assert not any(f.startswith("user/") or f == "dbgscaffold.toml" for f in manifest["generated"])


# --- spec subcommands -----------------------------------------------------------------


def test_spec_example_round_trips(tmp_path):
    result = run_cli("spec", "example")
    assert result.exit_code == 0
    (tmp_path / "s.toml").write_text(result.stdout)
    check = run_cli("spec", "check", str(tmp_path / "s.toml"))
    assert check.exit_code == 0 and "21 entries" in check.stdout


def test_spec_check_reports_problems(tmp_path):
    (tmp_path / "s.toml").write_text('[module]\nname = "m"\nlicense = "MIT"\n')
    result = run_cli("spec", "check", str(tmp_path / "s.toml"))
    assert result.exit_code == 2 and "not GPL-compatible" in result.stderr


def test_spec_types_lists_every_type():
    from dbgscaffold.kinds import TYPES

    out = run_cli("spec", "types").stdout
    assert all(line.split()[0] in TYPES for line in out.splitlines())
    assert len(out.splitlines()) == len(TYPES)
