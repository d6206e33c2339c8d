"""`dbgscaffold new --into`: debugfs files added to a hand-written module, and regen there.

The Kbuild editing is pure (kbuild_edit) and tested on text; end to end, a
two-file driver gains the generated files, builds with kbuild, passes
`dbgscaffold test` in the VM with the spec's checks, and keeps passing after the
spec grows and regen rewrites our block; nothing of the user's is touched.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import require, require_tools, run_cli
from dbgscaffold import kbuild_edit
from dbgscaffold.errors import UserError
from dbgscaffold.kbuild import build
from dbgscaffold.vm import images, initramfs

KBUILD = """\
# SPDX-License-Identifier: GPL-2.0
# my hand-written driver
obj-m := hwdrv.o
hwdrv-y := hwdrv_main.o \\
\t   hwdrv_hw.o
"""

MAIN = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include "hwdrv.h"
{include}
static int __init hwdrv_init(void)
{{
	pr_info("hwdrv: id %x\\n", hwdrv_read_id());
	return {init};
}}

static void __exit hwdrv_exit(void)
{{
{exit}}}

module_init(hwdrv_init);
module_exit(hwdrv_exit);
MODULE_LICENSE("GPL");
"""

FILES = {
    "Kbuild": KBUILD,
    "Makefile": "KDIR ?= /lib/modules/$(shell uname -r)/build\nall:\n\t$(MAKE) -C $(KDIR) M=$(CURDIR) modules\n",
    "hwdrv.h": "/* SPDX-License-Identifier: GPL-2.0 */\n#ifndef HWDRV_H\n#define HWDRV_H\n#include <linux/types.h>\nu32 hwdrv_read_id(void);\n#endif\n",
    "hwdrv_hw.c": '// SPDX-License-Identifier: GPL-2.0\n#include <linux/types.h>\n#include "hwdrv.h"\n\nu32 hwdrv_read_id(void)\n{\n\treturn 0x1234;\n}\n',
    "hwdrv_main.c": MAIN.format(include="", init="0", exit=""),
}

SPEC = """\
[module]
name = "hwdbg"
root = "hwdrv"

[[entry]]
path = "id"
type = "x32"
mode = "0444"
value = 0x1234

[instance]
struct = "hwdev"
demo = ["dev0", "dev1"]

[[instance.entry]]
path = "count"
type = "u32"
field = "count"
value = 3
"""


def driver(tmp_path: Path, files: dict[str, str] = FILES) -> Path:
    project = tmp_path / "hwdrv"
    project.mkdir()
    for name, text in files.items():
        (project / name).write_text(text)
    (tmp_path / "spec.toml").write_text(SPEC)
    return project


def digests(project: Path) -> dict[str, str]:
    return {p.relative_to(project).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(project.rglob("*")) if p.is_file()}


def into(tmp_path: Path, project: Path, *extra: str):
    return run_cli("new", "--spec", str(tmp_path / "spec.toml"), "--into", str(project), *extra)


# ---------------------------------------------------------------------------
# kbuild_edit, on text


def test_the_composite_module_and_its_objects_are_found_across_continuations():
    found = kbuild_edit.find_module(KBUILD, "Kbuild")
    assert (found.module, found.variable, found.objects) == ("hwdrv", "hwdrv-y", ("hwdrv_main.o", "hwdrv_hw.o"))
    objs = kbuild_edit.find_module("obj-m += a.o\na-objs := x.o\na-objs += y.o\n", "Makefile")
    assert (objs.variable, objs.objects) == ("a-objs", ("x.o", "y.o"))


def test_our_block_is_appended_replaced_and_removable_leaving_the_text_as_it_was():
    found = kbuild_edit.find_module(KBUILD, "Kbuild")
    once = kbuild_edit.with_block(KBUILD, found, ["hwdbg_debugfs.o"])
    assert once.startswith(KBUILD) and "hwdrv-y += hwdbg_debugfs.o\n" in once and kbuild_edit.has_block(once)
    twice = kbuild_edit.with_block(once, found, ["hwdbg_debugfs.o", "user/stats.o"])
    assert twice.count(kbuild_edit.BEGIN) == 1 and "hwdrv-y += hwdbg_debugfs.o user/stats.o\n" in twice
    assert kbuild_edit.without_block(twice) == KBUILD
    assert kbuild_edit.find_module(twice, "Kbuild").objects == found.objects  # our block is not the user's list


@pytest.mark.parametrize("text, wanted, fragment", [
    ("obj-m := hwdrv.o\n", None, "built from hwdrv.c alone"),
    ("obj-m := a.o b.o\na-y := x.o\nb-y := y.o\n", None, "it builds several modules (a, b). Fix: pass --module"),
    ("obj-m := a.o\na-y := x.o\n", "b", "no module 'b' in obj-m"),
    ("obj-m := $(MOD).o\n", None, "built from make variables"),
    ("# nothing\n", None, "no obj-m line names a module"),
    ("obj-m := a.o\na-y := x.o\na-objs := y.o\n", None, "lists its objects in both a-y and a-objs"),
])
def test_what_cannot_be_edited_safely_is_refused_with_a_fix(text, wanted, fragment):
    with pytest.raises(UserError) as info:
        kbuild_edit.find_module(text, "Kbuild", wanted)
    assert fragment in str(info.value) and "Fix:" in str(info.value)
    assert kbuild_edit.find_module("obj-m := a.o b.o\na-y := x.o\nb-y := y.o\n", "K", "b").objects == ("y.o",)


# ---------------------------------------------------------------------------
# the command


def test_into_adds_only_its_own_files_and_a_block(tmp_path):
    project = driver(tmp_path)
    before = digests(project)
    r = into(tmp_path, project)
    assert r.exit_code == 0, r.output
    after = digests(project)
    assert {k: v for k, v in after.items() if k in before and k != "Kbuild"} == {k: v for k, v in before.items() if k != "Kbuild"}
    kbuild = (project / "Kbuild").read_text()
    assert kbuild.startswith(KBUILD) and kbuild_edit.has_block(kbuild)
    assert set(after) - set(before) == {"hwdbg_debugfs.c", "hwdbg_debugfs.h", "hwdbg_compat.h", "dbgscaffold.toml", ".dbgscaffold-manifest.json"}
    c = (project / "hwdbg_debugfs.c").read_text()
    assert "module_init" not in c and "MODULE_LICENSE" not in c and "int hwdbg_debugfs_init(void)" in c
    recorded = json.loads((project / ".dbgscaffold-manifest.json").read_text())["into"]
    assert (recorded["kbuild"], recorded["module"], recorded["user"]) == ("Kbuild", "hwdrv", [])
    again = into(tmp_path, project)
    assert again.exit_code == 2 and "dbgscaffold regen" in again.stderr


def test_regen_keeps_the_owners_bytes_and_files_and_guards_its_block(tmp_path):
    """A Latin-1 byte in the Kbuild survives; the user's own user/*.c is no orphan; a block
    edited by hand or cut short is not rewritten silently."""
    latin = KBUILD.encode().replace(b"# my hand-written driver", b"# my hand-written driver, by Ren\xe9")
    project = driver(tmp_path)
    (project / "Kbuild").write_bytes(latin)
    (project / "user").mkdir()
    (project / "user" / "mine.c").write_text("/* the driver's own */\n")
    assert into(tmp_path, project).exit_code == 0
    assert (project / "Kbuild").read_bytes().startswith(latin)
    r = run_cli("regen", str(project))
    assert r.exit_code == 0 and "mine.c" not in r.output, r.output
    assert (project / "Kbuild").read_bytes().startswith(latin)
    text = (project / "Kbuild").read_bytes()
    (project / "Kbuild").write_bytes(text.replace(b"ccflags-y += -I$(src)\n", b"ccflags-y += -I$(src) -DMINE\n"))
    r = run_cli("regen", str(project))
    assert r.exit_code == 2 and "edited by hand" in r.stderr and "--force" in r.stderr
    assert b"-DMINE" in (project / "Kbuild").read_bytes()
    assert run_cli("regen", str(project), "--force").exit_code == 0 and b"-DMINE" not in (project / "Kbuild").read_bytes()
    (project / "Kbuild").write_bytes((project / "Kbuild").read_bytes().replace(kbuild_edit.END.encode(), b"") + b"obj-y += later.o\n")
    r = run_cli("regen", str(project))
    assert r.exit_code == 2 and "lost its last line" in r.stderr and b"later.o" in (project / "Kbuild").read_bytes()


@pytest.mark.parametrize("change, fragment", [
    ({"Kbuild": "obj-m := hwdrv.o\n"}, "single-file module"),
    ({"hwdbg_debugfs.c": "/* mine */\n"}, "would overwrite what is yours: hwdbg_debugfs.c"),
    ({"dbgscaffold.toml": "[test]\n"}, "would overwrite what is yours: dbgscaffold.toml"),
])
def test_a_project_that_cannot_take_the_files_is_left_as_it_was(tmp_path, change, fragment):
    project = driver(tmp_path, {**FILES, **change})
    before = digests(project)
    r = into(tmp_path, project)
    assert r.exit_code == 2 and fragment in r.stderr and "Fix:" in r.stderr and "Traceback" not in r.stderr, r.output
    assert digests(project) == before


@pytest.mark.kbuild
def test_a_makefile_only_module_builds_with_the_block(tmp_path, kernel_headers):
    """The classic ifneq ($(KERNELRELEASE),) Makefile: the block goes at its end and kbuild builds it."""
    require_tools("make", "gcc")
    makefile = ("ifneq ($(KERNELRELEASE),)\nobj-m := hwdrv.o\nhwdrv-y := hwdrv_main.o hwdrv_hw.o\nelse\n"
                "KDIR ?= /lib/modules/$(shell uname -r)/build\nall:\n\t$(MAKE) -C $(KDIR) M=$(CURDIR) modules\nendif\n")
    files = {k: v for k, v in FILES.items() if k != "Kbuild"}
    project = driver(tmp_path, {**files, "Makefile": makefile})
    assert into(tmp_path, project).exit_code == 0
    assert (project / "Makefile").read_text().startswith(makefile)
    (project / "hwdrv_main.c").write_text(MAIN.format(include='#include "hwdbg_debugfs.h"\n', init="hwdbg_debugfs_init()", exit="\thwdbg_debugfs_exit();\n"))
    result = build(project, kernel_headers["6.1"].build_dir, extra_warnings=True)
    assert result.ok and not result.diagnostics, result.output
    assert (project / "hwdrv.ko").is_file()


def test_the_driver_passes_its_spec_in_the_vm_and_after_regen(tmp_path):
    require_tools("qemu-system-x86_64", "make", "strip")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    require(any(p.release.startswith("6.1.") for p in images.scan_pairs().pairs), "a 6.1 kernel image + headers pair")
    project = driver(tmp_path)
    assert into(tmp_path, project).exit_code == 0
    (project / "hwdrv_main.c").write_text(MAIN.format(include='#include "hwdbg_debugfs.h"\n', init="hwdbg_debugfs_init()", exit="\thwdbg_debugfs_exit();\n"))
    report = tmp_path / "r.json"
    r = run_cli("test", str(project), "--kernel", "6.1", "--json", str(report))
    assert r.exit_code == 0, r.output
    names = [c["name"] for c in json.loads(report.read_text())["runs"][0]["checks"]]
    assert "insmod hwdrv" in names and "id: reads its initial value" in names and "dev1/count: reads its initial value" in names
    mine = {k: v for k, v in digests(project).items() if k.startswith("hwdrv")}
    with (project / "dbgscaffold.toml").open("a") as f:
        f.write('\n[[entry]]\npath = "stats"\ntype = "seq"\n')
    r = run_cli("regen", str(project))
    assert r.exit_code == 0 and "created user/stats.c" in r.output, r.output
    assert "hwdrv-y += hwdbg_debugfs.o user/stats.o\n" in (project / "Kbuild").read_text()
    assert {k: v for k, v in digests(project).items() if k.startswith("hwdrv")} == mine
    r = run_cli("test", str(project), "--kernel", "6.1", "--json", str(report))
    assert r.exit_code == 0, r.output
    assert "stats: exists" in [c["name"] for c in json.loads(report.read_text())["runs"][0]["checks"]]
