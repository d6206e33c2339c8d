"""kbuild's compiler probes answered from the cache (kbuild_probes.mk): the same
command lines as kbuild's own probing, on real kbuild against both kernels' headers;
the answers are what kbuild uses; a new toolchain or a changed tree gets its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, require, require_tools
from dbgscaffold import kbuild, kbuild_probes, sandbox, untrusted_build
from dbgscaffold.kbuild import build
from dbgscaffold.kbuild_probes import KBUILD_TRY_RUN, probe_answers, served

C_SOURCE = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>

static int __init probed_init(void)
{
	return 0;
}
module_init(probed_init);
MODULE_LICENSE("GPL");
"""


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "probed"
    p.mkdir()
    (p / "probed.c").write_text(C_SOURCE)
    (p / "Kbuild").write_text("obj-m := probed.o\n")
    return p


def compile_command(project: Path, kdir: Path, probes: bool) -> str:
    """Rebuild from clean and return the command kbuild compiled probed.o with."""
    for p in project.iterdir():
        if p.name not in ("probed.c", "Kbuild"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    result = build(project, kdir, probes=probes)
    assert result.ok, result.output
    return (project / ".probed.o.cmd").read_text().splitlines()[0]


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_cached_probe_answers_give_kbuild_its_own_command_lines(series, project, cache, kernel_headers):
    require_tools("make", "gcc")
    kdir = kernel_headers[series].build_dir
    probed = compile_command(project, kdir, probes=False)
    answers = probe_answers(kdir)
    assert not answers.exists()
    cold = compile_command(project, kdir, probes=True)  # probes, and records the answers
    recorded = answers.read_text().splitlines()
    assert len(recorded) >= 20 and all(re.fullmatch(r"dbgs-probes \+= \S+=>\S*=<", line) for line in recorded), recorded[:3]
    warm = compile_command(project, kdir, probes=True)  # answered from the file
    assert cold == probed and warm == probed
    assert answers.read_text().splitlines() == recorded, "a warm build has nothing new to record"
    assert list(answers.parent.glob("*.new")) == []


def test_a_cached_answer_is_what_kbuild_uses_and_only_a_file_of_ours_is_read(project, cache, kernel_headers):
    require_tools("make", "gcc")
    kdir = kernel_headers["6.1"].build_dir
    compile_command(project, kdir, probes=True)
    answers = probe_answers(kdir)
    lines = answers.read_text().splitlines()
    # the answer to one probe kbuild adds to the compile flags, planted
    n, line = next((i, x) for i, x in enumerate(lines) if re.search(r"=>-\S+=<$", x) and "|-fno-" in x)
    lines[n] = re.sub(r"=>\S+=<$", "=>-DDBGS_PLANTED=<", line)
    answers.write_text("".join(x + "\n" for x in lines))
    assert "-DDBGS_PLANTED" in compile_command(project, kdir, probes=True)
    # A file another user could have written is make code we do not run.
    answers.chmod(0o666)
    assert "-DDBGS_PLANTED" not in compile_command(project, kdir, probes=True)


def test_a_new_toolchain_or_a_changed_tree_gets_answers_of_its_own(tmp_path, cache, monkeypatch):
    kdir = tmp_path / "kdir"
    kdir.mkdir()
    (kdir / "Makefile").write_text("# a kernel tree\n")
    (kdir / ".config").write_text('CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"\nCONFIG_X=y\n')
    bin_dir = tmp_path / "bin"  # on PATH from the start: only the compiler changes below
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    first = probe_answers(kdir)
    assert probe_answers(kdir) == first and first.parent == cache / "probes"

    # a gcc-12 of its own appears first on PATH (an upgrade, a wrapper): the kernel's own CC changed
    (bin_dir / "gcc-12").write_text("#!/bin/sh\nexec /usr/bin/gcc \"$@\"\n")
    (bin_dir / "gcc-12").chmod(0o755)
    other_compiler = probe_answers(kdir)
    assert other_compiler != first
    os.utime(bin_dir / "gcc-12", ns=(1, 1))  # the same path, rebuilt
    rebuilt = probe_answers(kdir)
    assert rebuilt != other_compiler
    # a cross toolchain's binutils
    monkeypatch.setenv("CROSS_COMPILE", "x-")
    (bin_dir / "x-ld").write_text("#!/bin/sh\n")
    (bin_dir / "x-ld").chmod(0o755)
    cross = probe_answers(kdir)
    os.utime(bin_dir / "x-ld", ns=(1, 1))
    assert probe_answers(kdir) != cross
    monkeypatch.delenv("CROSS_COMPILE")
    assert probe_answers(kdir) == rebuilt

    (kdir / ".config").write_text('CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"\nCONFIG_X=n\n')
    changed_tree = probe_answers(kdir)
    assert changed_tree not in (first, other_compiler, rebuilt)
    assert probe_answers(kdir, ["CC=clang"]) != changed_tree, "make arguments are in the key"
    assert probe_answers(kdir, env={**os.environ, "PATH": "/usr/bin:/bin"}) != changed_tree, "so is the PATH make runs with"


def test_only_a_tree_whose_try_run_is_the_one_we_copy_is_served(tmp_path, kernel_headers):
    assert all(served(h.build_dir) for h in kernel_headers.values())
    old = tmp_path / "old"  # Linux <= 5.12: TMPOUT was M= itself, and the copy's trap would remove it
    (old / "scripts").mkdir(parents=True)
    (old / "Makefile").write_text("# an old tree\n")
    text = KBUILD_TRY_RUN.replace("TMPOUT = $(if $(KBUILD_EXTMOD),$(firstword $(KBUILD_EXTMOD))/).tmp_$$$$",
                                  "TMPOUT := $(if $(KBUILD_EXTMOD),$(firstword $(KBUILD_EXTMOD))/)")
    (old / "scripts" / "Makefile.compiler").write_text("# SPDX\n" + text)
    assert not served(old)
    (old / "scripts" / "Makefile.compiler").write_text("# SPDX\n" + KBUILD_TRY_RUN + "# more\n")
    assert served(old)


def test_a_killed_build_leaves_its_whole_answers_and_no_record_file(project, cache, kernel_headers):
    require_tools("make", "gcc")
    kdir = kernel_headers["6.1"].build_dir
    with pytest.raises(subprocess.TimeoutExpired):
        build(project, kdir, timeout=0.3)  # killed while kbuild parses its Makefiles and probes
    answers = probe_answers(kdir)
    assert list(answers.parent.glob("*.new")) == []
    if answers.exists():  # what was probed before the kill (maybe nothing): whole lines only
        assert all(re.fullmatch(r"dbgs-probes \+= \S+=>\S*=<", line) for line in answers.read_text().splitlines())
    assert kbuild.build(project, kdir).ok


def sandbox_answers(kdir: Path, args: list[str]) -> Path:
    """The answers a sandboxed build with make arguments `args` reads (its PATH is the sandbox's)."""
    return probe_answers(kdir, args, sandbox.environment())


def require_sandbox() -> None:
    require_tools("make", "gcc", "bwrap")
    why = sandbox.available()
    if why and IN_CI:
        pytest.fail(f"the sandbox does not work here: {why}")
    require(not why, f"a working sandbox ({why})")


def test_a_sandboxed_build_reads_the_answers_and_records_none(project, cache, kernel_headers):
    require_sandbox()
    kdir = kernel_headers["6.1"].build_dir
    env = sandbox.environment()
    kbuild.warm_probes(kdir, ["W=1"], env, kbuild_probes.answers_for(kdir, ["W=1"], env))  # what the first sandboxed build does
    answers = sandbox_answers(kdir, ["W=1"])
    lines = answers.read_text().splitlines()
    n, line = next((i, x) for i, x in enumerate(lines) if re.search(r"=>-\S+=<$", x) and "|-fno-" in x)
    lines[n] = re.sub(r"=>\S+=<$", "=>-DDBGS_PLANTED=<", line)
    del lines[n + 1:]  # answers left for the sandbox to probe itself
    answers.write_text("".join(x + "\n" for x in lines))
    before = answers.read_bytes()
    (project / "probed.c").write_text(C_SOURCE + "#ifdef DBGS_PLANTED\n#error the planted answer\n#endif\n")
    with untrusted_build.build(project, kdir, ["W=1"], untrusted_build.Untrusted()) as (_, result):
        assert not result.ok and "the planted answer" in result.output, result.output[-2000:]
    assert answers.read_bytes() == before, "the sandbox probed what was missing and recorded none of it"


def test_the_first_sandboxed_build_has_the_answers_recorded_by_a_build_of_our_own(project, cache, kernel_headers):
    require_sandbox()
    kdir = kernel_headers["6.1"].build_dir
    answers = sandbox_answers(kdir, ["KCFLAGS=-g"])
    states = []
    for _ in range(2):
        with untrusted_build.build(project, kdir, ["KCFLAGS=-g"], untrusted_build.Untrusted()) as (_, result):
            assert result.ok, result.output[-2000:]
        assert len(answers.read_text().splitlines()) >= 20 and answers.stat().st_mode & 0o777 == 0o644
        warmed = answers.with_suffix(".warmed")
        states.append((answers.read_bytes(), warmed.stat().st_mtime_ns))  # (its mtime says when it was last used)
    assert states[0] == states[1], "warmed once: the second build recorded nothing"


def test_sandboxed_builds_on_6_12_share_one_module_common_object_made_by_a_build_of_our_own(project, cache, kernel_headers, tmp_path,
                                                                                             monkeypatch):
    """From 6.11 kbuild compiles scripts/module-common.c into every module directory; in the
    sandbox (M= always the same path) one object made from our own module serves all."""
    require_sandbox()
    require_tools("nm")
    kdir = kernel_headers["6.12"].build_dir
    with untrusted_build.build(project, kdir, [], untrusted_build.Untrusted()) as (products, result):
        assert result.ok, result.output[-2000:]
    kept = sandbox_answers(kdir, []).with_suffix(".module-common")
    assert sorted(p.name for p in kept.iterdir()) == sorted(untrusted_build.MODULE_COMMON)
    # the same bytes as a second cache's own (compiling it is deterministic), so reusing it changes nothing
    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "other-cache"))
    with untrusted_build.build(project, kdir, [], untrusted_build.Untrusted()) as (_, result):
        assert result.ok
    other = sandbox_answers(kdir, []).with_suffix(".module-common")
    assert (other / ".module-common.o").read_bytes() == (kept / ".module-common.o").read_bytes()
    # what kbuild links is the kept object: one with a marker symbol in its place ends up in the module
    marker = tmp_path / "marker.c"
    marker.write_text("int dbgs_planted_marker;\n")
    subprocess.run(["gcc", "-c", "-o", str(other / ".module-common.o"), str(marker)], check=True)
    with untrusted_build.build(project, kdir, [], untrusted_build.Untrusted()) as (products, result):
        assert result.ok, result.output[-2000:]
        symbols = subprocess.run(["nm", str(products / "probed.ko")], capture_output=True, text=True, check=True).stdout
    assert "dbgs_planted_marker" in symbols


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_a_graded_build_keeps_the_solutions_mod_o_only_where_its_mod_c_is_the_same(series, cache, kernel_headers, tmp_path):
    """lab grade seeds each sandboxed build with NAME.mod.o of the lab's solution: kbuild
    keeps it for a submission whose NAME.mod.c comes out the same (what modpost writes is
    the judge) and compiles its own for one that imports other symbols."""
    require_sandbox()
    require_tools("modprobe")
    from dbgscaffold.lab.manifest import find_lab
    from dbgscaffold.lab.project import write_project
    from dbgscaffold.lab.run import lab_kbuild

    lab = find_lab("debugfs-basics")
    kdir = kernel_headers[series].build_dir
    seed, same, other = tmp_path / "seed", tmp_path / "same", tmp_path / "other"
    for p in (seed, same, other):
        write_project(lab, p, solution=True)
    c = other / "mydebug.c"
    c.write_text(c.read_text().replace("static int __init mydebug_init(void)\n{\n", "static int __init mydebug_init(void)\n{\n\tmsleep(1);\n", 1)
                 .replace("#include <linux/module.h>", "#include <linux/delay.h>\n#include <linux/module.h>", 1))
    how = untrusted_build.Untrusted(kbuild=lab_kbuild(lab), seed=seed)

    def built(project: Path) -> tuple[bool, str]:
        with untrusted_build.build(project, kdir, [], how) as (products, result):
            assert result.ok, result.output[-3000:]
            versions = subprocess.run(["modprobe", "--dump-modversions", str(products / "mydebug.ko")], capture_output=True, text=True,
                                      check=False).stdout
        return any(line.endswith("mydebug.mod.o") and "CC" in line for line in result.output.splitlines()), versions

    compiled, versions = built(same)
    assert not compiled, "the solution's own .mod.o was not kept"
    compiled, versions = built(other)
    assert compiled, "a submission importing msleep kept the solution's .mod.o"
    assert "msleep" in versions or not versions  # a kernel without modversions lists none


def test_only_the_most_recently_used_answers_are_kept_with_what_goes_with_them(tmp_path):
    from dbgscaffold.kbuild_probes import prune, used

    for n, name in enumerate("abcde"):
        (tmp_path / f"{name}.mk").write_text("dbgs-probes += k=>v=<\n")
        (tmp_path / f"{name}.mk.lock").touch()
        (tmp_path / f"{name}.warmed").write_text("warmed")
        (tmp_path / f"{name}.module-common").mkdir()
        (tmp_path / f"{name}.module-common" / ".module-common.o").touch()
        os.utime(tmp_path / f"{name}.mk", (1000 + n, 1000 + n))
    used(tmp_path / "a.mk")  # the oldest, used just now
    prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{name}{suffix}" for name in "ae" for suffix in (".mk", ".mk.lock", ".warmed", ".module-common"))


def test_a_module_for_the_vm_skips_btf_which_the_kernels_own_build_adds(project, cache, kernel_headers, tmp_path):
    """On 6.12 (Debian's headers ship a vmlinux) kbuild gives every module a .BTF section:
    pahole, objcopy, resolve_btfids. Nothing in the guest reads it, so the VM's builds skip
    it; `dbgscaffold build` (the user's module) keeps it."""
    require_tools("make", "gcc", "pahole", "readelf")
    from dbgscaffold.runner.build import build_modules, guest_build_args

    headers = kernel_headers["6.12"]
    assert "CONFIG_DEBUG_INFO_BTF_MODULES=" in guest_build_args(headers.build_dir)

    def sections(ko: Path) -> str:
        return subprocess.run(["readelf", "-S", "-W", str(ko)], capture_output=True, text=True, check=True).stdout

    assert build(project, headers.build_dir).ok
    assert " .BTF " in sections(project / "probed.ko")
    built = build_modules(project, headers.build_dir, headers.release, tmp_path / "out")
    (module,) = built.modules
    assert " .BTF " not in sections(module.debug_ko) and " .text" in sections(module.ko)
