"""Kconfig tree analysis with kconfiglib + our compat layer, on Debian's real 6.1 and 6.12 trees.

The real-tree tests need /usr/src/linux-source-{6.1,6.12}.tar.xz (skipped
outside CI when missing, failed under CI=true).  Small synthetic trees in
tmp_path cover the compat rewrite and the parsed-tree cache.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import kconfiglib
import pytest

from conftest import debian_config, kbuild_conf, require, require_tools
from dbgscaffold.errors import EXIT_ENVIRONMENT, EnvironmentProblem, UserError
from dbgscaffold.kconfig import tree as T
from dbgscaffold.kconfig.compat import rewrite_kconfig, split_depends_if
from dbgscaffold.kconfig.explain import BLOCKED, FORCED, OK, PROMPTLESS, SETTABLE, UNDEFINED, apply_assignments, explain
from dbgscaffold.kconfig.fix import apply_fix, plan_fix, write_fixed_config

CONFIGS = {s: debian_config(s) for s in ("6.1", "6.12")}  # the installed releases, discovered
CONF_TOOLS = {s: kbuild_conf(s) for s in ("6.1", "6.12")}


def _source_tree(series: str, arch: str = "x86") -> T.SourceTree:
    require_tools("tar", "xz", "gcc")
    try:
        T.find_source_tarball(series)
    except EnvironmentProblem as exc:
        require(False, f"linux-source-{series} tarball ({exc})")
    return T.find_source_tree(series, arch=arch)


@pytest.fixture(scope="session")
def tree61() -> T.SourceTree:
    return _source_tree("6.1")


@pytest.fixture(scope="session")
def tree612() -> T.SourceTree:
    return _source_tree("6.12")


def _config(series: str) -> Path:
    require(CONFIGS[series].is_file(), f"Debian's {CONFIGS[series]}")
    return CONFIGS[series]


@pytest.fixture
def debian61(tree61):
    """The 6.1 tree with Debian's 6.1 config loaded (a fresh object per test)."""
    return T.load_tree(tree61, config=_config("6.1"))


def _vals(kconf, *names):
    return {n: kconf.syms[n].str_value for n in names}


# --------------------------------------------------------------------------
# Compat rewrite on synthetic text


def test_rewrite_modules_transitional_and_depends_if():
    text = textwrap.dedent(
        """\
        menuconfig MODULES
        \tbool "Enable loadable module support"
        \tmodules
        \thelp
        \t  Help text lines are prose, even this one:
        \t  modules
        \t  transitional

        config OLD_NAME
        \tbool
        \ttransitional
        \thelp
        \t  Carries CONFIG_OLD_NAME over.

        config NEW_NAME
        \tbool "new"
        \tdefault OLD_NAME
        \tdepends on FOO if BAR # keep this comment
        \tdepends on A && \\
        \t  B if (C || D)
        \tdepends on EXTCON || !EXTCON # if EXTCON=m, this cannot be built-in
        \tdepends on S = "if"
        """
    )
    result = rewrite_kconfig(text)
    out = result.text.splitlines()
    assert len(out) == len(text.splitlines())  # line numbers survive
    assert out[2] == "\toption modules"
    assert out[5] == "\t  modules" and out[6] == "\t  transitional"  # help untouched
    assert out[10].startswith('\tprompt "(transitional')
    assert result.transitional == ("OLD_NAME",)
    assert out[17] == "\tdepends on (FOO) || !(BAR) # keep this comment"
    assert out[18] == "\tdepends on (A && \t  B) || !((C || D))" and out[19] == ""
    assert out[20] == "\tdepends on EXTCON || !EXTCON # if EXTCON=m, this cannot be built-in"
    assert out[21] == '\tdepends on S = "if"'
    assert [c.kind for c in result.changes] == ["modules", "transitional", "depends-if", "depends-if"]


def test_rewrite_leaves_ordinary_kconfig_byte_identical():
    text = 'config FOO\n\ttristate "foo"\n\tdepends on BAR || !BAR\n\tselect BAZ if QUX\n\tdefault m if MODULES\n\thelp\n\t  modules\n\nsource "drivers/Kconfig"\n'
    assert rewrite_kconfig(text).text == text
    assert rewrite_kconfig(text).changes == ()


def test_split_depends_if():
    assert split_depends_if("X if Y") == ("X", "Y", "")
    assert split_depends_if("(A if B) if C") == ("(A if B)", "C", "")
    assert split_depends_if('S = "a if b"') is None
    assert split_depends_if("IFFY && DIFF") is None
    assert split_depends_if("X # if Y") is None


# --------------------------------------------------------------------------
# Synthetic trees through CompatKconfig


def _mini_tree(root: Path, kconfig_body: str, arch_body: str = "config X86\n\tdef_bool y\n") -> Path:
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "arch" / "x86").mkdir(parents=True, exist_ok=True)
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 99\nSUBLEVEL = 0\nEXTRAVERSION = -test\n")
    (root / "scripts" / "Kconfig.include").write_text("success = $(shell,{ $(1); } >/dev/null 2>&1 && echo y || echo n)\n")
    (root / "arch" / "x86" / "Kconfig").write_text(arch_body)
    (root / "Kconfig").write_text('mainmenu "Linux/$(SRCARCH) $(KERNELVERSION) Kernel Configuration"\nsource "scripts/Kconfig.include"\nsource "arch/$(SRCARCH)/Kconfig"\n' + textwrap.dedent(kconfig_body))
    return root


MINI = """\
menuconfig MODULES
\tbool "Enable loadable module support"
\tmodules

config DRIVER
\ttristate "a driver"

config OLD_OPT
\tbool
\ttransitional

config NEW_OPT
\tbool "new option"
\tdefault OLD_OPT

config GATE
\tbool "gate"

config NEED
\tbool "needed"

config COND
\tbool "conditional dependency"
\tdepends on NEED if GATE

config HAS_CC
\tdef_bool $(success,true)
"""


@pytest.fixture
def mini(tmp_path, monkeypatch):
    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))
    return _mini_tree(tmp_path / "linux", MINI)


def test_plain_kconfiglib_fails_on_synthetic_modules(mini):
    tree = T.check_srctree(mini)
    with T.patched_environ(T.kconfig_environment(tree)):
        with pytest.raises(kconfiglib.KconfigError, match="couldn't parse 'modules'"):
            kconfiglib.Kconfig(str(mini / "Kconfig"), warn=False)


def test_compat_semantics_on_synthetic_tree(mini, tmp_path):
    kconf = T.load_tree(mini, use_cache=False)
    assert kconf.modules.nodes, "MODULES is the modules symbol"
    assert kconf.syms["HAS_CC"].str_value == "y"  # $(shell,...) ran
    assert kconf.transitional == {"OLD_OPT"}
    # m only exists with MODULES=y: proves the 'modules' attribute took.
    kconf.syms["MODULES"].set_value("y")
    kconf.syms["DRIVER"].set_value("m")
    assert kconf.syms["DRIVER"].str_value == "m"
    kconf.syms["MODULES"].set_value("n")
    assert kconf.syms["DRIVER"].str_value == "y"
    # depends on NEED if GATE == NEED || !GATE
    cond = kconf.syms["COND"]
    for gate, need, visible in (("n", "n", True), ("y", "n", False), ("y", "y", True)):
        kconf.syms["GATE"].set_value(gate)
        kconf.syms["NEED"].set_value(need)
        assert bool(cond.visibility) == visible, (gate, need)
    # transitional: the old .config value reaches the new symbol, and is not written back
    old = tmp_path / "old.config"
    old.write_text("CONFIG_OLD_OPT=y\n")
    T.load_config(kconf, old)
    assert kconf.syms["NEW_OPT"].str_value == "y"
    out = tmp_path / "new.config"
    kconf.write_config(str(out), save_old=False)
    written = out.read_text()
    assert "CONFIG_NEW_OPT=y" in written and "OLD_OPT" not in written
    assert explain(kconf, "OLD_OPT", "y").kind == UNDEFINED
    assert "NEW_OPT" in explain(kconf, "OLD_OPT", "y").message


def test_probes_run_once_each_and_never_from_help_text(tmp_path, monkeypatch):
    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))
    log = tmp_path / "probes.log"
    body = f"""\
config EARLY
\tdef_bool $(shell,echo early >> {log}; echo y)

config DOCUMENTED
\tbool "documented"
\thelp
\t  Never run: $(shell,echo help >> {log})

source "sub/Kconfig"
"""
    root = _mini_tree(tmp_path / "linux", body)
    (root / "sub").mkdir()
    (root / "sub" / "Kconfig").write_text(f"config LATE\n\tdef_bool $(shell,echo late >> {log}; echo y)\n")
    kconf = T.load_tree(root, use_cache=False)
    assert kconf.syms["EARLY"].str_value == "y" and kconf.syms["LATE"].str_value == "y"
    assert sorted(log.read_text().split()) == ["early", "late"]


def test_unsupported_syntax_is_a_user_error_with_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))
    root = _mini_tree(tmp_path / "linux", "config FOO\n\tbool \"foo\"\n\tfrobnicate sideways\n")
    with pytest.raises(T.KconfigSyntaxUnsupported) as info:
        T.load_tree(root, use_cache=False)
    assert info.value.file == "Kconfig" and info.value.line == 6
    assert isinstance(info.value, UserError)
    assert f"{root}/Kconfig:6" in str(info.value) and "flat analysis" in str(info.value)


def test_missing_compiler_is_an_environment_problem(mini):
    include = mini / "scripts" / "Kconfig.include"
    include.write_text(include.read_text() + "failure = $(shell,{ $(1); } >/dev/null 2>&1 && echo n || echo y)\n$(error-if,$(failure,command -v $(CC)),C compiler '$(CC)' not found)\n")
    with pytest.raises(T.KconfigToolMissing) as info:
        T.load_tree(mini, use_cache=False, env_overrides={"CC": "no-such-cc"})
    assert info.value.exit_code == EXIT_ENVIRONMENT and info.value.line == 3
    assert "C compiler 'no-such-cc' not found" in str(info.value)
    assert T.load_tree(mini, use_cache=False).syms["HAS_CC"].str_value == "y"  # with gcc it passes


def test_not_a_kernel_tree_names_what_is_missing(tmp_path):
    (tmp_path / "Makefile").write_text("all:\n")
    with pytest.raises(UserError, match=r"missing Kconfig, scripts/Kconfig.include, arch/x86/Kconfig"):
        T.check_srctree(tmp_path)
    with pytest.raises(UserError, match="no such directory"):
        T.check_srctree(tmp_path / "nope")


def test_parse_does_not_leak_environment_or_print(mini, capsys):
    before = dict(os.environ)
    T.load_tree(mini, use_cache=False)
    assert dict(os.environ) == before
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --------------------------------------------------------------------------
# Parsed-tree cache on a synthetic tree


def test_cache_hit_invalidation_and_corruption(mini):
    first = T.load_tree(mini)
    assert not first.load_info.cached
    second = T.load_tree(mini)
    assert second.load_info.cached and second.load_info.cache_path == first.load_info.cache_path
    assert [s.name for s in second.unique_defined_syms] == [s.name for s in first.unique_defined_syms]
    # Touched but unchanged: still a hit (the content hash decides).
    kconfig = mini / "Kconfig"
    os.utime(kconfig, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    assert T.load_tree(mini).load_info.cached
    # Same size, new content: a miss.
    text = kconfig.read_text()
    kconfig.write_text(text.replace('"a driver"', '"b driver"'))
    os.utime(kconfig, ns=(time.time_ns(), time.time_ns() + 10_000_000_000))
    changed = T.load_tree(mini)
    assert not changed.load_info.cached and changed.syms["DRIVER"].nodes[0].prompt[0] == "b driver"
    # A new symbol in a sourced file: a miss.
    arch = mini / "arch" / "x86" / "Kconfig"
    arch.write_text(arch.read_text() + '\nconfig ADDED\n\tbool "added"\n')
    third = T.load_tree(mini)
    assert not third.load_info.cached and "ADDED" in third.syms and third.syms["ADDED"].nodes
    assert T.load_tree(mini).load_info.cached
    # A corrupt entry is ignored and rebuilt.
    entry = Path(third.load_info.cache_path)
    with open(entry, "rb") as f:
        header = pickle.load(f)
    entry.write_bytes(pickle.dumps(header) + b"garbage")
    fourth = T.load_tree(mini)
    assert not fourth.load_info.cached and "ADDED" in fourth.syms
    assert T.load_tree(mini).load_info.cached
    entry.write_bytes(b"\x00" * 10)
    assert not T.load_tree(mini).load_info.cached
    # A different environment is a different entry.
    assert not T.load_tree(mini, env_overrides={"CC": "gcc -m64"}).load_info.cached
    assert T.clear_parsed_cache() >= 2


# --------------------------------------------------------------------------
# Versions, tarballs


def test_versions_and_tarball_lookup(tmp_path):
    assert T.KernelVersion.parse("6.12.117+deb12-amd64") == T.KernelVersion(6, 12, 117)
    assert T.KernelVersion.parse((6, 1)).series == "6.1"
    require(CONFIGS["6.1"].is_file(), "Debian's 6.1 config")
    found = T.version_from_config(CONFIGS["6.1"])
    assert found is not None and found.series == "6.1" and found.sublevel > 0  # Debian's 6.1 is 6.1.<sublevel>
    assert T.version_from_config(tmp_path / "missing") is None
    (tmp_path / "linux-source-6.1.tar.xz").write_bytes(b"")
    assert T.find_source_tarball("6.1.192", search=(tmp_path,)).name == "linux-source-6.1.tar.xz"
    with pytest.raises(EnvironmentProblem, match=r"no kernel source for 6.12 .*found linux-source-6.1.tar.xz.*apt-get install linux-source-6.12"):
        T.find_source_tarball("6.12.117+deb12-amd64", search=(tmp_path,))


# --------------------------------------------------------------------------
# The real trees


def test_plain_kconfiglib_fails_on_real_61_tree(tree61):
    with T.patched_environ(T.kconfig_environment(tree61)):
        with pytest.raises(kconfiglib.KconfigError, match=r"kernel/module/Kconfig:\d+: error: couldn't parse 'modules'"):
            kconfiglib.Kconfig(str(tree61.path / "Kconfig"), warn=False)


@pytest.mark.slow
@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_compat_parses_real_tree_and_cache_matches(series, request, capsys):
    tree = request.getfixturevalue("tree61" if series == "6.1" else "tree612")
    cold = T.load_tree(tree, use_cache=False)
    assert len(cold.unique_defined_syms) > 15000
    assert ("kernel/module/Kconfig", "modules") in {(f, c.kind) for f, c in cold.rewrites}
    assert cold.modules.nodes and cold.modules.nodes[0].filename == "kernel/module/Kconfig"
    T.load_tree(tree)  # make sure an entry exists
    warm = T.load_tree(tree)
    assert warm.load_info.cached
    with capsys.disabled():
        print(f"\n  {series}: cold parse {cold.load_info.seconds:.2f}s, cached load {warm.load_info.seconds:.2f}s, {warm.load_info.symbols} symbols")
    assert [s.name for s in warm.unique_defined_syms] == [s.name for s in cold.unique_defined_syms]
    config = _config(series)
    T.load_config(cold, config)
    T.load_config(warm, config)
    assert {s.name: s.str_value for s in warm.unique_defined_syms} == {s.name: s.str_value for s in cold.unique_defined_syms}


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_debian_config_loads(series, request, capsys):
    tree = request.getfixturevalue("tree61" if series == "6.1" else "tree612")
    kconf = T.load_tree(tree, config=_config(series))
    assert _vals(kconf, "DEBUG_FS", "KPROBES", "DEBUG_INFO", "MODULES") == {"DEBUG_FS": "y", "KPROBES": "y", "DEBUG_INFO": "y", "MODULES": "y"}
    assert kconf.config_load.path == str(CONFIGS[series])
    assert capsys.readouterr().err == ""


def test_menu_order(debian61):
    order = T.menu_order(debian61)
    assert len(order) >= len(debian61.unique_defined_syms) - 5
    assert order["DEBUG_INFO_NONE"] < order["DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT"] < order["DEBUG_INFO_DWARF5"]
    assert order["LOCALVERSION"] < order["MODULES"] < order["DEBUG_FS"]


def test_clone_and_fresh_copy_are_independent(debian61):
    copy = T.clone(debian61)
    copy.syms["KPROBES"].set_value("n")
    assert copy.syms["KPROBES"].str_value == "n" and debian61.syms["KPROBES"].str_value == "y"
    assert T.fresh_copy(debian61).syms["DEBUG_FS"].str_value == "n"  # Kconfig default, no .config


# --------------------------------------------------------------------------
# Explanations on the real 6.1 tree


def _debug_info_none(kconf):
    kconf.syms["DEBUG_INFO_NONE"].choice.set_value("y")
    kconf.syms["DEBUG_INFO_NONE"].set_value("y")
    assert kconf.syms["DEBUG_INFO"].str_value == "n"


def test_debug_info_is_promptless_and_fixed_through_the_choice(debian61):
    _debug_info_none(debian61)
    exp = explain(debian61, "DEBUG_INFO", "y")
    assert exp.kind == PROMPTLESS and exp.current == "n"
    assert "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT" in exp.message and exp.choice == "Debug information"
    assert exp.fix == (("DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "y"),) and exp.fix_works
    assert ("DEBUG_INFO", "y") not in exp.fix  # writing that would do nothing
    assert debian61.syms["DEBUG_INFO"].str_value == "n"  # explain() left the tree alone
    result = apply_fix(debian61, plan_fix(debian61, [("DEBUG_INFO", "y")]))
    assert result.ok and result.kconf.syms["DEBUG_INFO"].str_value == "y"
    assert result.fragment == "# CONFIG_DEBUG_INFO_NONE is not set\nCONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y\n"
    assert result.scripts_config == ("scripts/config --disable DEBUG_INFO_NONE", "scripts/config --enable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT")


def test_preempt_tracer_is_blocked_down_to_a_settable_symbol(debian61):
    debian61.syms["PREEMPT_DYNAMIC"].set_value("n")  # Debian's PREEMPT_VOLUNTARY alone: no PREEMPTION
    assert _vals(debian61, "PREEMPTION", "PREEMPT_TRACER") == {"PREEMPTION": "n", "PREEMPT_TRACER": "n"}
    exp = explain(debian61, "PREEMPT_TRACER", {"y"})
    assert exp.kind == BLOCKED
    assert "PREEMPTION (=n)" in exp.depends and "PREEMPTION (=n)" in exp.unmet
    assert exp.locations and exp.locations[0].startswith("kernel/trace/Kconfig:")
    assert exp.chain[:2] == ("PREEMPT_TRACER", "PREEMPTION")
    last = exp.causes[0]
    while last.causes:
        last = last.causes[0]
    assert last.kind == SETTABLE and last.symbol in {"PREEMPT", "PREEMPT_DYNAMIC"}
    assert exp.fix_works and ("PREEMPT_TRACER", "y") in exp.fix
    assert json.loads(json.dumps(exp.to_dict()))["chain"] == list(exp.chain)
    result = apply_fix(debian61, plan_fix(debian61, [("PREEMPT_TRACER", "y")]))
    assert result.ok and _vals(result.kconf, "PREEMPTION", "PREEMPT_TRACER") == {"PREEMPTION": "y", "PREEMPT_TRACER": "y"}


def test_kprobes_off_is_settable(debian61):
    debian61.syms["KPROBES"].set_value("n")
    exp = explain(debian61, "KPROBES", "y")
    assert exp.kind == SETTABLE and exp.fix == (("KPROBES", "y"),) and exp.fix_works
    assert explain(debian61, "KPROBES", "ny").kind == OK


def test_undefined_for_arch_and_for_version(tree612):
    arm = T.load_tree(_source_tree("6.1", arch="arm64"), arch="arm64")
    exp = explain(arm, "MMIOTRACE", "y")
    assert exp.kind == UNDEFINED and "HAVE_MMIOTRACE_SUPPORT" in exp.message and "arm64" in exp.message
    assert explain(arm, "MMIOTRACE", "n").kind == OK
    new = T.load_tree(tree612, config=_config("6.12"))
    exp = explain(new, "DEBUG_INFO_COMPRESSED", {"y"})  # 6.12 made it a choice of ZLIB/ZSTD
    assert exp.kind == UNDEFINED and "6.12" in exp.message and not exp.fix


def test_must_be_unset_but_selected_says_who_selects_it(debian61):
    exp = explain(debian61, "RELAY", "n")
    assert exp.kind == FORCED
    assert any(s.startswith(("DRM_I915 ", "BLK_DEV_IO_TRACE ")) for s in exp.selected_by)
    assert exp.fix_works and ("RELAY", "n") in exp.fix
    member = explain(debian61, "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "n")
    assert member.kind == SETTABLE and member.fix_works and len(member.fix) == 1 and member.fix[0][1] == "y"


def test_arch_only_drivers_and_dead_ends(debian61):
    # "depends on ARCH_ROCKCHIP || COMPILE_TEST": not on x86, and a fix never turns on COMPILE_TEST.
    exp = explain(debian61, "ROCKCHIP_THERMAL", "y")
    assert exp.kind == UNDEFINED and "ARCH_ROCKCHIP" in exp.message and not exp.fix
    # ISA sound cards need X86_32: blocked, no fix, and the message says where the chain ends.
    dead = explain(debian61, "SND_INTERWAVE_STB", "ym")
    assert dead.kind == BLOCKED and not dead.fix_works and not dead.fix
    assert "SND_ISA (=n)" in dead.unmet and "X86_32" in dead.message and dead.causes


@pytest.mark.slow
def test_explain_sample_claims_hold_and_tree_is_untouched(debian61):
    import random

    syms = [s for s in debian61.unique_defined_syms if s.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE)]
    before = {s.name: s.str_value for s in syms}
    rng = random.Random(3)
    fixes = []
    for sym in rng.sample(syms, 300):
        wanted = "n" if sym.str_value != "n" else "ym"
        exp = explain(debian61, sym.name, wanted)
        assert exp.kind in {OK, UNDEFINED, SETTABLE, BLOCKED, PROMPTLESS, FORCED}
        assert bool(exp.fix) == (exp.fix_works and exp.kind != OK)
        if exp.fix:
            fixes.append((sym.name, wanted, exp.fix))
    assert {s.name: s.str_value for s in syms} == before
    # Check a few claims on independent copies, through the public apply path.
    for name, wanted, fix in rng.sample(fixes, 8):
        copy = T.clone(debian61)
        apply_assignments(copy, fix)
        assert copy.syms[name].str_value in wanted, (name, wanted, fix)


# --------------------------------------------------------------------------
# Fix, write, re-check


FOUR = ("DEBUG_INFO", "KPROBES", "DEBUG_FS", "RELAY")


def test_round_trip_fix_written_config(debian61, tmp_path):
    # Break Debian's config: DEBUG_INFO off through DEBUG_INFO_NONE, the others with set_value.
    _debug_info_none(debian61)
    for name in FOUR[1:]:
        debian61.syms[name].set_value("n")
    broken = tmp_path / "broken.config"
    debian61.write_config(str(broken), save_old=False)
    # DEBUG_FS and RELAY are selected by others in Debian's config: set_value alone cannot turn them off.
    reloaded = T.load_tree(debian61.source_tree, config=broken)
    assert _vals(reloaded, "DEBUG_INFO", "KPROBES") == {"DEBUG_INFO": "n", "KPROBES": "n"}
    # ...so switch them off for real with our own "must be unset" fix.
    off = apply_fix(reloaded, plan_fix(reloaded, [(n, "n") for n in FOUR]))
    assert off.ok, off.outcomes
    really_broken = tmp_path / "really-broken.config"
    assert write_fixed_config(off, really_broken).ok
    start = T.load_tree(debian61.source_tree, config=really_broken)
    assert _vals(start, *FOUR) == dict.fromkeys(FOUR, "n")

    plan = plan_fix(start, [(n, "y") for n in FOUR])
    assert not plan.conflicts and not plan.expected_failures
    result = apply_fix(start, plan)
    assert result.ok and not result.dropped
    assert "CONFIG_DEBUG_INFO=y" not in result.fragment and "CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y" in result.fragment
    assert start.syms["KPROBES"].str_value == "n"  # apply_fix worked on a copy
    fixed = tmp_path / "fixed.config"
    written = write_fixed_config(result, fixed)
    assert written.ok and written.not_taken == ()
    assert [(o.symbol, o.before, o.after) for o in written.outcomes] == [(n, "n", "y") for n in FOUR]
    check = T.load_tree(debian61.source_tree, config=fixed)
    assert _vals(check, *FOUR) == dict.fromkeys(FOUR, "y")
    assert T.version_from_config(fixed) == T.KernelVersion(6, 1, 192)
    json.dumps([plan.to_dict(), result.to_dict(), written.to_dict()])


def test_write_refuses_input_unless_in_place(debian61, tmp_path):
    config = tmp_path / ".config"
    shutil.copy(CONFIGS["6.1"], config)
    kconf = T.load_tree(debian61.source_tree, config=config)
    kconf.syms["KPROBES"].set_value("n")
    result = apply_fix(kconf, plan_fix(kconf, [("CONFIG_KPROBES", "y")]))
    original = config.read_bytes()
    with pytest.raises(UserError, match="input config"):
        write_fixed_config(result, config)
    with pytest.raises(UserError, match="no output path"):
        write_fixed_config(result)
    assert config.read_bytes() == original
    written = write_fixed_config(result, in_place=True)
    assert written.ok and written.backup == str(config) + ".bak"
    assert Path(written.backup).read_bytes() == original


def test_undefined_and_conflicting_wants_are_reported(debian61):
    debian61.syms["KPROBES"].set_value("n")
    plan = plan_fix(debian61, [("NO_SUCH_SYMBOL", "y"), ("KPROBES", "y"), ("MODULES", "n")])
    result = apply_fix(debian61, plan)
    by = {o.symbol: o for o in result.outcomes}
    assert not by["NO_SUCH_SYMBOL"].ok and "not defined" in by["NO_SUCH_SYMBOL"].reason
    # KPROBES needs MODULES on 6.1: wanting both cannot work, and we say so.
    assert by["MODULES"].ok and not by["KPROBES"].ok
    assert "conflicts with the wanted MODULES=n" in by["KPROBES"].reason
    # Two members of one choice: the second is left out, with the reason.
    plan = plan_fix(debian61, [("DEBUG_INFO_DWARF4", "y"), ("DEBUG_INFO_DWARF5", "y")])
    assert plan.assignments == (("DEBUG_INFO_DWARF4", "y"),) and plan.expected_failures == ("DEBUG_INFO_DWARF5",)
    result = apply_fix(debian61, plan)
    assert [o.ok for o in result.outcomes] == [True, False] and "same choice" in result.outcomes[1].reason
    assert result.fragment == "# CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT is not set\nCONFIG_DEBUG_INFO_DWARF4=y\n"


def _run_conf(series: str, tree: T.SourceTree, config: Path, workdir: Path) -> dict[str, str]:
    """The kernel's own `conf --olddefconfig` (Debian's linux-kbuild) on `config`."""
    conf = CONF_TOOLS[series]
    require(conf.is_file(), f"{conf} (Debian linux-kbuild-{series})")
    workdir.mkdir()
    shutil.copy(config, workdir / ".config")
    env = {**os.environ, **T.kconfig_environment(tree)}
    env["CC_VERSION_TEXT"] = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    proc = subprocess.run([str(conf), "--olddefconfig", "Kconfig"], cwd=workdir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    values = {}
    for line in (workdir / ".config").read_text().splitlines():
        if line.startswith("CONFIG_"):
            name, _, value = line.partition("=")
            values[name[7:]] = value
    return values


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_kernel_conf_agrees_with_the_fix(series, request, tmp_path):
    """The C tool (olddefconfig) keeps what our fixed config asks for, and drops nothing of it."""
    tree = request.getfixturevalue("tree61" if series == "6.1" else "tree612")
    kconf = T.load_tree(tree, config=_config(series))
    off = apply_fix(kconf, plan_fix(kconf, [(n, "n") for n in FOUR]))
    broken = tmp_path / "broken.config"
    assert write_fixed_config(off, broken).ok
    before = _run_conf(series, tree, broken, tmp_path / "c1")
    assert all(before.get(n) is None for n in FOUR)  # the check below can fail
    start = T.load_tree(tree, config=broken)
    result = apply_fix(start, plan_fix(start, [(n, "y") for n in FOUR]))
    fixed = tmp_path / "fixed.config"
    assert write_fixed_config(result, fixed).ok
    after = _run_conf(series, tree, fixed, tmp_path / "c2")
    assert {n: after.get(n) for n in FOUR} == dict.fromkeys(FOUR, "y")
    ours = T.load_tree(tree, config=fixed)
    differ = {n: (v, ours.syms[n].str_value) for n, v in after.items() if n in ours.syms and ours.syms[n].orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE) and ours.syms[n].str_value != v}
    assert not differ, f"kconfiglib and conf disagree on {len(differ)} symbols: {dict(list(differ.items())[:10])}"
