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
from conftest import require, require_tools

from dbgscaffold.errors import EnvironmentProblem, UserError
from dbgscaffold.kconfig import tree as T
from dbgscaffold.kconfig.compat import CompatKconfig, rewrite_kconfig, split_depends_if

CONFIGS = {"6.1": Path("/boot/config-6.1.0-56-amd64"), "6.12": Path("/boot/config-6.12.117+deb12-amd64")}
CONF_TOOLS = {"6.1": Path("/usr/lib/linux-kbuild-6.1/scripts/kconfig/conf"), "6.12": Path("/usr/lib/linux-kbuild-6.12.117+deb12/scripts/kconfig/conf")}


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


def test_unsupported_syntax_is_a_user_error_with_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))
    root = _mini_tree(tmp_path / "linux", "config FOO\n\tbool \"foo\"\n\tfrobnicate sideways\n")
    with pytest.raises(T.KconfigSyntaxUnsupported) as info:
        T.load_tree(root, use_cache=False)
    assert info.value.file == "Kconfig" and info.value.line == 6
    assert isinstance(info.value, UserError)
    assert f"{root}/Kconfig:6" in str(info.value) and "flat analysis" in str(info.value)


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
    assert T.version_from_config(CONFIGS["6.1"]) == T.KernelVersion(6, 1, 192)
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
