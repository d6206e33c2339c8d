"""check-config without a Kconfig tree: the .config reader, the profiles,
the flat check, exit codes and the JSON document.  End-to-end tests use
Debian's real configs from linux-image (/boot/config-6.1.*, -6.12.*)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require, run_cli
from dbgscaffold.errors import UserError
from dbgscaffold.kconfig.dotconfig import parse_dotconfig, read_dotconfig
from dbgscaffold.kconfig.flat import FAIL, NOT_IN_KERNEL, OK, check_flat, run_status
from dbgscaffold.kconfig.profiles import available_profiles, load_profile, load_tracer_map, parse_profile

HEADER = "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.192 Kernel Configuration\n#\n"


def debian_config(series: str) -> Path:
    found = sorted(Path("/boot").glob(f"config-{series}.*"))
    require(bool(found), f"Debian's /boot/config-{series}.* (package linux-image)")
    return found[-1]


# --- the .config reader -----------------------------------------------------------


def test_parse_values_header_and_unset():
    cfg = parse_dotconfig(HEADER + 'CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_S="x y"\nCONFIG_H=0x10\n')
    assert cfg.version == (6, 1, 192) and cfg.arch == "x86"
    assert [cfg.get(s) for s in "ABC"] == ["y", "m", "n"]
    assert cfg.get("S") == '"x y"' and cfg.get("H") == "0x10" and cfg.get("D") is None
    assert cfg.warnings == ()


def test_duplicates_last_wins_with_both_lines_named():
    cfg = parse_dotconfig("CONFIG_A=y\n\nCONFIG_A=m\n", "x.config")
    assert cfg.get("A") == "m"
    assert cfg.warnings == ("x.config:3: CONFIG_A given again (line 1: y, line 3: m); the last one wins, as in kconfig",)


def test_crlf_and_garbage_are_warnings():
    cfg = parse_dotconfig("CONFIG_A=y\r\nthis is junk\r\nCONFIG_B=m\r\nmore junk\r\n", "c")
    assert cfg.get("A") == "y" and cfg.get("B") == "m"
    assert "c: CRLF line endings, read as LF" in cfg.warnings
    assert "c: ignored 2 line(s) that are not kconfig syntax: line 2, 4" in cfg.warnings


@pytest.mark.parametrize("text", ["", "hello\nworld\n", "# only comments\n"])
def test_text_without_config_lines_is_an_error(text):
    with pytest.raises(UserError, match="not a kernel config"):
        parse_dotconfig(text, "f")


def test_read_gzip_binary_directory_missing(tmp_path):
    (tmp_path / "c.gz").write_bytes(gzip.compress(b"CONFIG_A=y\n"))
    assert read_dotconfig(tmp_path / "c.gz").get("A") == "y"
    (tmp_path / "bin").write_bytes(b"\x7fELF\0\0\1")
    with pytest.raises(UserError, match="binary data"):
        read_dotconfig(tmp_path / "bin")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(UserError, match="corrupt gzip"):
        read_dotconfig(tmp_path / "bad.gz")
    with pytest.raises(UserError, match="is a directory"):
        read_dotconfig(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        read_dotconfig(tmp_path / "nope")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=40),
    st.from_regex(r"CONFIG_[A-Z0-9_]{1,12}=(y|m|n|\"[^\"]*\"|0x[0-9a-f]+|-?\d+)", fullmatch=True),
    st.from_regex(r"# CONFIG_[A-Z0-9_]{1,12} is not set", fullmatch=True),
    st.sampled_from(["# Linux/x86 6.1.0 Kernel Configuration", "#", "\r", "# Linux/arm64 6.12.7-rc1 Kernel Configuration"]),
), max_size=30))
def test_reader_fuzz_never_raises_anything_but_user_error(lines):
    text = "\n".join(lines)
    try:
        cfg = parse_dotconfig(text, "fuzz")
    except UserError as exc:
        assert "not a kernel config" in str(exc)
        return
    for symbol, value in cfg.values.items():
        assert cfg.get(symbol) == value.value and value.line >= 1
    assert all(isinstance(w, str) for w in cfg.warnings)


# --- profiles --------------------------------------------------------------------------


def test_shipped_profiles_parse_and_cover_the_issue():
    assert set(available_profiles()) >= {"systemtap", "ftrace", "kprobes", "debugfs", "module", "bpf", "debug"}
    symbols = {n: {o.symbol: o for o in load_profile(n).options} for n in available_profiles()}
    st_ = symbols["systemtap"]
    assert {s for s, o in st_.items() if o.level == "required"} == {"DEBUG_INFO", "KPROBES", "DEBUG_FS", "RELAY", "MODULES", "MODULE_UNLOAD", "UPROBES"}
    assert {s for s, o in st_.items() if o.level == "recommended"} == {"KPROBE_EVENTS", "DEBUG_INFO_BTF"}
    assert set(symbols["ftrace"]) == set(
        "FTRACE FUNCTION_TRACER FUNCTION_GRAPH_TRACER DYNAMIC_FTRACE SCHED_TRACER IRQSOFF_TRACER PREEMPT_TRACER "
        "STACK_TRACER MMIOTRACE KPROBE_EVENTS UPROBE_EVENTS FTRACE_SYSCALLS BLK_DEV_IO_TRACE HWLAT_TRACER "
        "TRACER_SNAPSHOT BRANCH_TRACER".split())
    assert symbols["ftrace"]["MMIOTRACE"].arches == ("x86",)
    assert symbols["module"]["MODULE_SIG_FORCE"].accepted == {"n"}
    assert symbols["debugfs"]["DEBUG_FS_ALLOW_NONE"].accepted == {"n"}
    assert all(o.why for opts in symbols.values() for o in opts.values())


def test_profiles_are_kernel_config_fragments():
    """Every non-comment line is what merge_config.sh takes."""
    from dbgscaffold.kconfig.profiles import profiles_dir

    for path in profiles_dir().glob("*.config"):
        for line in path.read_text().splitlines():
            assert not line or line.startswith("#") or line.startswith("CONFIG_"), (path, line)


def test_profile_defaults_and_errors():
    p = parse_profile("# @required why=\"a\"\nCONFIG_A=m\n# @recommended why=\"b\" since=5.2 arch=x86\n# CONFIG_B is not set\n", "t")
    a, b = p.options
    assert a.accepted == {"y", "m"} and b.accepted == {"n"} and b.since == (5, 2) and b.arches == ("x86",)
    with pytest.raises(UserError, match="without a '# @required'"):
        parse_profile("CONFIG_A=y\n", "t")
    with pytest.raises(UserError, match="no why"):
        parse_profile("# @required\nCONFIG_A=y\n", "t")
    with pytest.raises(UserError, match="unknown annotation '@maybe'"):
        parse_profile("# @maybe why=x\nCONFIG_A=y\n", "t")


def test_a_setter_line_is_no_option_of_its_own():
    p = parse_profile('# @required why="a"\nCONFIG_A=y\n# @sets symbol=A since=5.18 why="the choice sets A"\nCONFIG_A_CHOICE=y\n', "t")
    assert [o.symbol for o in p.options] == ["A"]
    (s,) = p.setters
    assert (s.symbol, s.value, s.sets, s.since, s.line) == ("A_CHOICE", "y", "A", (5, 18), 4)
    with pytest.raises(UserError, match="the profile has no such option"):
        parse_profile('# @required why="a"\nCONFIG_A=y\n# @sets symbol=B why="x"\nCONFIG_C=y\n', "t")
    with pytest.raises(UserError, match="needs symbol=OPTION"):
        parse_profile('# @required why="a"\nCONFIG_A=y\n# @sets why="x"\nCONFIG_C=y\n', "t")
    with pytest.raises(UserError, match="sets CONFIG_C=y or =m"):
        parse_profile('# @required why="a"\nCONFIG_A=y\n# @sets symbol=A why="x"\n# CONFIG_C is not set\n', "t")
    st_ = load_profile("systemtap")
    assert {s.sets: s.symbol for s in st_.setters} == {"DEBUG_INFO": "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "UPROBES": "UPROBE_EVENTS"}


def test_unknown_profile_suggests_a_name():
    with pytest.raises(UserError, match="Did you mean 'systemtap'"):
        load_profile("systemtrap")


def test_tracer_map_covers_the_classic_list():
    names = {t.name for t in load_tracer_map()}
    assert names >= {"function", "function_graph", "sched_switch", "wakeup", "wakeup_rt", "irqsoff", "preemptoff",
                     "preemptirqsoff", "branch", "hw-branch", "initcall", "mmiotrace", "power", "sysprof", "kmemtrace",
                     "workqueue statistics", "event tracing"}
    by_name = {t.name: t for t in load_tracer_map()}
    assert by_name["hw-branch"].status == "removed" and by_name["sysprof"].status == "removed"
    assert by_name["sched_switch"].status == "event" and by_name["kmemtrace"].status == "event"


# --- the flat check --------------------------------------------------------------------


def test_flat_statuses():
    profile = parse_profile(
        '# @required why="a"\nCONFIG_A=y\n# @required why="b"\nCONFIG_B=m\n'
        '# @required why="c"\n# CONFIG_C is not set\n# @recommended why="d" arch=arm64\nCONFIG_D=y\n'
        '# @recommended why="e" since=7.0\nCONFIG_E=y\n', "t")
    cfg = parse_dotconfig(HEADER + "CONFIG_A=m\nCONFIG_B=m\nCONFIG_C=y\n")
    results = {r.symbol: r for r in check_flat(cfg, [profile])}
    assert results["A"].status == FAIL and results["A"].reason == "is m, needs y"
    assert results["B"].status == OK
    assert results["C"].status == FAIL and "must be unset" in results["C"].reason
    assert results["D"].status == NOT_IN_KERNEL and "only arm64" in results["D"].reason
    assert results["E"].status == NOT_IN_KERNEL and "since 7.0" in results["E"].reason
    assert run_status(list(results.values())) == 1


def test_recommended_fail_only_with_strict():
    profile = parse_profile('# @recommended why="x"\nCONFIG_X=y\n', "t")
    results = check_flat(parse_dotconfig("CONFIG_Y=y\n"), [profile])
    assert results[0].status == FAIL and "absent" in results[0].reason
    assert run_status(results) == 0 and run_status(results, strict=True) == 1


# --- the command, on Debian's real configs ----------------------------------------------------


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_debian_config_passes_systemtap_flat(series):
    result = run_cli("check-config", str(debian_config(series)), "--flat", "--no-runtime")
    assert result.exit_code == 0, result.output
    assert "Linux " + series in result.stdout and "CONFIG_DEBUG_INFO" in result.stdout


def test_debug_profile_fails_debian_config_with_exit_1():
    result = run_cli("check-config", str(debian_config("6.1")), "-p", "debug", "--flat", "--no-runtime")
    assert result.exit_code == 1
    assert "FAIL CONFIG_KASAN (required): is not set, needs y" in result.stdout


def test_strict_turns_recommended_failures_into_exit_1():
    cfg = str(debian_config("6.1"))
    assert run_cli("check-config", cfg, "-p", "ftrace", "--flat", "--no-runtime").exit_code == 0
    assert run_cli("check-config", cfg, "-p", "ftrace", "--flat", "--no-runtime", "--strict").exit_code == 1


def test_json_document(tmp_path):
    cfg = debian_config("6.1")
    text = cfg.read_text().replace("CONFIG_KPROBES=y", "# CONFIG_KPROBES is not set")
    (tmp_path / "c").write_text(text)
    result = run_cli("check-config", str(tmp_path / "c"), "-p", "systemtap", "-p", "module", "--flat", "--no-runtime", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dbgscaffold/check-config/v1"
    assert doc["config"]["kernel_version"].startswith("6.1.") and doc["config"]["arch"] == "x86"
    assert [p["name"] for p in doc["profiles"]] == ["systemtap", "module"]
    kprobes = next(o for o in doc["options"] if o["symbol"] == "KPROBES")
    assert kprobes == {**kprobes, "status": "fail", "actual": "n", "level": "required", "accepted": ["y"]}
    assert doc["summary"]["required_failed"] == ["KPROBES"] and doc["summary"]["exit_code"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent/config"], "no such file"),
        (["/"], "is a directory"),
        (["-p", "nosuch", "/boot"], "unknown profile 'nosuch'"),
    ],
)
def test_bad_input_exits_2_without_traceback(args, message):
    result = run_cli("check-config", *args, "--flat", "--no-runtime")
    assert result.exit_code == 2 and message in result.stderr and result.exception is None


def test_explain_prints_the_tracer_map_with_availability():
    result = run_cli("check-config", str(debian_config("6.1")), "-p", "ftrace", "--flat", "--no-runtime", "--explain")
    assert result.exit_code == 0
    line = next(ln for ln in result.stdout.splitlines() if ln.strip().startswith("irqsoff"))
    assert " no " in line  # Debian 6.1 has no IRQSOFF_TRACER
    assert any(ln.strip().startswith("sysprof") and "removed" in ln for ln in result.stdout.splitlines())


def test_list_profiles():
    result = run_cli("check-config", "--list-profiles")
    assert result.exit_code == 0
    assert [ln.split()[0] for ln in result.stdout.splitlines()] == available_profiles()
