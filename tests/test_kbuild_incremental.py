"""kbuild.incremental_build: a persistent build tree per (project, kdir,
compiler) in the cache, real kbuild against the 6.1 headers.

A small hand-written two-file module (a.c calls a function in b.c that
returns a tag string) so "only the changed file is recompiled" and "the .ko
holds the new code" can both be seen.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from conftest import require_tools
from dbgscaffold.kbuild import RETRY_NOTE, UP_TO_DATE_NOTE, _cmd_inputs, build_key, builds_dir, incremental_build, prune_builds

A_C = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include "b.h"

static int __init twofile_init(void)
{
	pr_info("twofile: %s\\n", twofile_tag());
	return 0;
}

static void __exit twofile_exit(void)
{
}

module_init(twofile_init);
module_exit(twofile_exit);
MODULE_LICENSE("GPL");
"""

B_C = """\
// SPDX-License-Identifier: GPL-2.0
#include "b.h"

const char *twofile_tag(void)
{
	return "twofile-tag-%s";
}
"""

B_H = "/* SPDX-License-Identifier: GPL-2.0 */\nconst char *twofile_tag(void);\n"
KBUILD = "obj-m := twofile.o\ntwofile-y := a.o b.o\n"
A_ALONE_C = A_C.replace('#include "b.h"\n', "").replace("twofile_tag()", '"alone"')


@pytest.fixture
def kdir(kernel_headers):
    require_tools("make", "gcc")
    return kernel_headers["6.1"].build_dir


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "twofile"
    p.mkdir()
    (p / "a.c").write_text(A_C)
    (p / "b.c").write_text(B_C % 1)
    (p / "b.h").write_text(B_H)
    (p / "Kbuild").write_text(KBUILD)
    (p / "README.md").write_text("not a build input\n")
    return p


def compiled(output: str) -> set[str]:
    """Names of the user's objects make compiled ("CC [M]  /x/b.o" -> "b.o"), kbuild's own left out."""
    names = {Path(m).name for m in re.findall(r"^\s+CC \[M\]\s+(\S+)$", output, re.M)}
    return {n for n in names if not n.endswith(".mod.o") and not n.startswith(".")}


def build_ko(project: Path, kdir: Path) -> tuple[bytes, str]:
    with incremental_build(project, kdir) as (build_dir, result):
        assert result.ok, result.output
        kos = list(build_dir.glob("*.ko"))
        assert [k.name for k in kos] == ["twofile.ko"]
        return kos[0].read_bytes(), result.output


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file()}


def test_second_build_without_change_compiles_nothing_and_keeps_the_ko(project, kdir, cache):
    first, out1 = build_ko(project, kdir)
    assert compiled(out1) == {"a.o", "b.o"}
    second, out2 = build_ko(project, kdir)
    assert compiled(out2) == set(), out2
    assert "LD [M]" not in out2, out2
    assert second == first
    # touching a file without changing its bytes is not a change either
    os.utime(project / "b.c")
    third, out3 = build_ko(project, kdir)
    assert compiled(out3) == set(), out3
    assert third == first


def test_an_unchanged_tree_skips_make_and_a_changed_one_runs_it(project, kdir, cache):
    first, out1 = build_ko(project, kdir)
    assert UP_TO_DATE_NOTE not in out1
    second, out2 = build_ko(project, kdir)
    assert out2 == UP_TO_DATE_NOTE and second == first
    (project / "b.c").write_text(B_C % 3)
    third, out3 = build_ko(project, kdir)
    assert UP_TO_DATE_NOTE not in out3 and compiled(out3) == {"b.o"}
    assert b"twofile-tag-3" in third


def test_a_changed_header_outside_the_project_runs_make(project, kdir, cache, tmp_path):
    # The sync only sees the project's files; a header included from elsewhere is
    # a dependency kbuild recorded in the .cmd file, like the kernel's own headers.
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "tag.h").write_text('#define TWOFILE_TAG "shared-1"\n')
    (project / "Kbuild").write_text(KBUILD + f"ccflags-y += -I{outside}\n")
    (project / "b.c").write_text(B_C.replace('"twofile-tag-%s"', "TWOFILE_TAG").replace('#include "b.h"', '#include "b.h"\n#include <tag.h>'))
    first, _ = build_ko(project, kdir)
    assert b"shared-1" in first
    assert build_ko(project, kdir)[1] == UP_TO_DATE_NOTE
    time.sleep(0.01)
    (outside / "tag.h").write_text('#define TWOFILE_TAG "shared-2"\n')
    second, out = build_ko(project, kdir)
    assert out != UP_TO_DATE_NOTE and compiled(out) == {"b.o"}, out
    assert b"shared-2" in second
    # a dependency that vanished is a reason to ask make too (whatever make decides)
    (outside / "tag.h").unlink()
    with incremental_build(project, kdir) as (_, result):
        assert result.output != UP_TO_DATE_NOTE and "Entering directory" in result.output


def test_cmd_inputs_reads_source_deps_and_wildcards():
    text = (
        "savedcmd_/t/b.o := gcc -c -o /t/b.o /t/b.c\n\n"
        "source_/t/b.o := /t/b.c\n\n"
        "deps_/t/b.o := \\\n"
        "  include/linux/compiler-version.h \\\n"
        "    $(wildcard include/config/CC_VERSION_TEXT) \\\n"
        "  /t/b.h \\\n\n"
        "/t/b.o: $(deps_/t/b.o)\n\n$(deps_/t/b.o):\n"
    )
    needed, optional = _cmd_inputs(text)
    assert needed == {"/t/b.c", "include/linux/compiler-version.h", "/t/b.h"}
    assert optional == {"include/config/CC_VERSION_TEXT"}


def test_changing_one_file_recompiles_only_that_file(project, kdir, cache):
    first, _ = build_ko(project, kdir)
    assert b"twofile-tag-1" in first
    (project / "b.c").write_text(B_C % 2)
    second, out = build_ko(project, kdir)
    assert compiled(out) == {"b.o"}, out
    assert second != first
    assert b"twofile-tag-2" in second and b"twofile-tag-1" not in second


def test_a_removed_file_leaves_no_stale_object(project, kdir, cache):
    build_ko(project, kdir)
    # Kbuild still wants b.o but b.c is gone: must fail like a fresh build,
    # not link the b.o the cached tree still holds.
    (project / "b.c").unlink()
    with incremental_build(project, kdir) as (build_dir, result):
        assert not result.ok, result.output
        assert not (build_dir / "b.c").exists()
    # and once the Kbuild no longer references it, the build works
    (project / "b.h").unlink()
    (project / "a.c").write_text(A_ALONE_C)
    (project / "Kbuild").write_text("obj-m := twofile.o\ntwofile-y := a.o\n")
    ko, out = build_ko(project, kdir)
    assert b"alone" in ko and b"twofile-tag" not in ko
    assert compiled(out) == {"a.o"}
    with incremental_build(project, kdir) as (build_dir, result):
        assert sorted(p.name for p in build_dir.iterdir() if p.suffix in (".c", ".h", ".o")) == ["a.c", "a.o", "twofile.mod.c", "twofile.mod.o", "twofile.o"]


def test_a_compile_error_names_the_project_file_and_builds_once(project, kdir, cache):
    build_ko(project, kdir)  # a reused tree: the case where a retry could happen
    (project / "b.c").write_text(B_C.replace("return", "retrun") % 1)
    with incremental_build(project, kdir) as (build_dir, result):
        assert not result.ok
        errors = [d for d in result.errors if d.tool == "gcc"]
        assert errors and {d.file for d in errors} == {str(project / "b.c")}, result.output
        assert str(build_dir) not in result.output and str(cache) not in result.output
        assert str(project / "b.c") in result.output
        assert RETRY_NOTE not in result.output
        assert result.output.count("CC [M]") == 1, result.output


def test_the_project_directory_is_left_byte_identical(project, kdir, cache):
    before = snapshot(project)
    build_ko(project, kdir)
    build_ko(project, kdir)
    (project / "b.c").write_text("broken\n")
    before_broken = snapshot(project)
    with incremental_build(project, kdir) as (_, result):
        assert not result.ok
    assert snapshot(project) == before_broken
    (project / "b.c").write_text(B_C % 1)
    after = snapshot(project)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert set(os.listdir(project)) == {"a.c", "b.c", "b.h", "Kbuild", "README.md"}


def test_a_damaged_tree_is_rebuilt_from_clean(project, kdir, cache):
    build_ko(project, kdir)
    [tree] = [p for p in builds_dir().iterdir() if p.is_dir()]
    src = tree / "src"
    # a truncated object newer than everything: make relinks it and ld fails;
    # no compiler error, so the tree is rebuilt once from clean
    (src / "b.o").write_bytes(b"\x7fELF")
    ko, out = build_ko(project, kdir)
    assert RETRY_NOTE in out
    assert compiled(out) == {"a.o", "b.o"}
    assert b"twofile-tag-1" in ko
    # missing .cmd files: kbuild rebuilds what they described
    for cmd in src.glob(".*.cmd"):
        cmd.unlink()
    ko, out = build_ko(project, kdir)
    assert compiled(out) == {"a.o", "b.o"}
    assert b"twofile-tag-1" in ko


def test_a_run_killed_mid_build_does_not_leave_old_code_in_the_ko(project, kdir, cache):
    build_ko(project, kdir)
    [tree] = [p for p in builds_dir().iterdir() if p.is_dir()]
    src = tree / "src"
    old_object = (src / "b.o").read_bytes()
    # what a run killed between the sync of a new b.c and kbuild's .cmd update
    # can leave: the new source, an object of the old one newer than it, the
    # old .cmd (same command line) -- make alone would call b.o up to date
    (project / "b.c").write_text(B_C % 2)
    (src / "b.c").write_text(B_C % 2)
    (src / "b.o").write_bytes(old_object)
    later = time.time_ns() + 2_000_000_000
    os.utime(src / "b.o", ns=(later, later))
    (tree / "BUILDING").touch()
    ko, _ = build_ko(project, kdir)
    assert b"twofile-tag-2" in ko and b"twofile-tag-1" not in ko


def test_a_second_build_of_the_same_tree_waits_for_the_first(project, kdir, cache):
    build_ko(project, kdir)
    entered = threading.Event()
    times = {}

    def first():
        with incremental_build(project, kdir) as (build_dir, result):
            entered.set()
            time.sleep(1.5)
            times["first_ko"] = (build_dir / "twofile.ko").read_bytes()
            times["first_left"] = time.monotonic()
            assert result.ok

    def second():
        entered.wait(30)
        with incremental_build(project, kdir) as (_, result):
            times["second_entered"] = time.monotonic()
            times["second_ok"] = result.ok

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert times["second_ok"]
    assert times["second_entered"] >= times["first_left"]
    assert b"twofile-tag-1" in times["first_ko"]


def test_kernels_get_separate_trees(project, kernel_headers, cache):
    require_tools("make", "gcc")
    dirs = set()
    for headers in kernel_headers.values():
        with incremental_build(project, headers.build_dir) as (build_dir, result):
            assert result.ok, result.output
            dirs.add(build_dir)
            assert headers.release.encode() in (build_dir / "twofile.ko").read_bytes()
    assert len(dirs) == 2


def test_the_key_follows_project_kdir_release_compiler_and_flags(tmp_path):
    kdir = tmp_path / "kdir"
    (kdir / "include" / "generated").mkdir(parents=True)
    uts = kdir / "include" / "generated" / "utsrelease.h"
    uts.write_text('#define UTS_RELEASE "6.1.0-1-amd64"\n')
    p, q = tmp_path / "p", tmp_path / "q"
    p.mkdir()
    q.mkdir()
    key = build_key(p, kdir, compiler="gcc (Debian 12.2.0-14) 12.2.0")
    assert key == build_key(p, kdir, compiler="gcc (Debian 12.2.0-14) 12.2.0")
    assert key != build_key(q, kdir, compiler="gcc (Debian 12.2.0-14) 12.2.0")
    assert key != build_key(p, kdir, compiler="gcc (Debian 13.1.0-1) 13.1.0")
    assert key != build_key(p, kdir, ["W=1", "C=2"], compiler="gcc (Debian 12.2.0-14) 12.2.0")
    other = tmp_path / "kdir2"
    other.symlink_to(kdir)
    assert key == build_key(p, other, compiler="gcc (Debian 12.2.0-14) 12.2.0"), "resolved kdir path"
    uts.write_text('#define UTS_RELEASE "6.1.0-2-amd64"\n')
    assert key != build_key(p, kdir, compiler="gcc (Debian 12.2.0-14) 12.2.0")


def test_prune_removes_trees_of_vanished_projects_but_not_busy_ones(tmp_path):
    import fcntl
    import json

    root = tmp_path / "builds"
    live = tmp_path / "live"
    live.mkdir()
    for name, project in (("gone", tmp_path / "deleted"), ("busy", tmp_path / "deleted"), ("live", live)):
        (root / name / "src").mkdir(parents=True)
        (root / name / "owner.json").write_text(json.dumps({"project": str(project), "kdir": str(tmp_path)}))
    fd = os.open(root / "busy.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert prune_builds(root) == 1
    finally:
        os.close(fd)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["busy", "live"]


def processes_mentioning(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


def test_a_timed_out_build_stops_make_and_its_children_and_the_next_run_is_clean(project, kdir, cache):
    import subprocess

    # a Kbuild that hangs in a child of make: killing make alone would leave
    # it holding the output pipe (and the tree) for the whole 37 s
    (project / "Kbuild").write_text("hang := $(shell sleep 37.25)\n" + KBUILD)
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        with incremental_build(project, kdir, timeout=5):
            pass
    assert time.monotonic() - start < 25
    deadline = time.monotonic() + 5  # SIGKILLed; on a loaded machine it can take a moment to be gone
    while processes_mentioning("sleep 37.25") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning("sleep 37.25") == []
    [tree] = [p for p in builds_dir().iterdir() if p.is_dir()]
    assert (tree / "BUILDING").exists()
    (project / "Kbuild").write_text(KBUILD)
    ko, out = build_ko(project, kdir)
    assert compiled(out) == {"a.o", "b.o"} and b"twofile-tag-1" in ko
    assert not (tree / "BUILDING").exists()
