"""check-config on the real Kconfig trees of Debian's linux-source-6.1 and
-6.12: explanations, verified fixes, --apply round trips and fallbacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import require, run_cli

pytestmark = pytest.mark.slow


def debian_config(series: str) -> Path:
    found = sorted(Path("/boot").glob(f"config-{series}.*"))
    require(bool(found), f"Debian's /boot/config-{series}.* (package linux-image)")
    require(bool(list(Path("/usr/src").glob(f"linux-source-{series}.tar.*"))), f"linux-source-{series}")
    return found[-1]


def edited(src: Path, dest: Path, **changes: str) -> Path:
    """A copy of `src` with CONFIG_<name> set to value ('n' = not set)."""
    text = src.read_text()
    for name, value in changes.items():
        line = f"# CONFIG_{name} is not set" if value == "n" else f"CONFIG_{name}={value}"
        text, count = re.subn(rf"^(CONFIG_{name}=.*|# CONFIG_{name} is not set)$", line, text, flags=re.M)
        if not count:
            text += line + "\n"
    dest.write_text(text)
    return dest


@pytest.fixture
def classic_four_off(tmp_path) -> Path:
    """Debian's 6.1 config with the classic SystemTap four switched off."""
    return edited(
        debian_config("6.1"), tmp_path / "off.config",
        DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT="n", DEBUG_INFO_NONE="y", KPROBES="n", DEBUG_FS="n", RELAY="n",
    )


def _options(doc: dict) -> dict:
    return {o["symbol"]: o for o in doc["options"]}


def test_explains_each_failure_on_the_61_tree(classic_four_off):
    result = run_cli("check-config", str(classic_four_off), "--no-runtime", "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["analysis"]["depth"] == "kconfig"
    opts = _options(doc)
    debug_info = opts["DEBUG_INFO"]["explanation"]
    assert debug_info["kind"] == "promptless" and debug_info["choice"] == "Debug information"
    assert {"symbol": "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "value": "y"} in opts["DEBUG_INFO"]["fix"]
    assert {"symbol": "DEBUG_INFO", "value": "y"} not in opts["DEBUG_INFO"]["fix"]
    assert opts["KPROBES"]["explanation"]["kind"] == "settable"
    assert opts["KPROBES"]["explanation"]["locations"] == ["arch/Kconfig:51"]
    blocked = opts["KPROBE_EVENTS"]["explanation"]
    assert blocked["kind"] == "blocked" and "KPROBES (=n)" in blocked["depends"]
    assert blocked["chain"][:2] == ["KPROBE_EVENTS", "KPROBES"]
    # DEBUG_FS and RELAY are selected by other options: kconfig turns them back on.
    assert opts["DEBUG_FS"]["status"] == "ok" and "kconfig evaluates it to y" in opts["DEBUG_FS"]["reason"]


def test_fix_fragment_holds_only_lines_that_take_effect(classic_four_off, tmp_path):
    fragment = tmp_path / "fix.config"
    result = run_cli("check-config", str(classic_four_off), "--no-runtime", "--fix-fragment", str(fragment), "--scripts-config")
    assert result.exit_code == 1
    lines = [ln for ln in fragment.read_text().splitlines() if not ln.startswith("# dbgscaffold") and not ln.startswith("# Only")]
    assert set(lines) == {"CONFIG_KPROBES=y", "# CONFIG_DEBUG_INFO_NONE is not set", "CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y"}
    assert "scripts/config --enable KPROBES" in result.stdout


def test_apply_round_trip_makes_every_required_option_pass(classic_four_off, tmp_path):
    fixed = tmp_path / "fixed.config"
    result = run_cli("check-config", str(classic_four_off), "--no-runtime", "--apply", str(fixed))
    assert result.exit_code == 0, result.output
    assert "every requested value took effect" in result.stdout
    again = run_cli("check-config", str(fixed), "--no-runtime", "--json")
    assert again.exit_code == 0, again.output
    opts = _options(json.loads(again.stdout))
    for symbol in ("DEBUG_INFO", "KPROBES", "DEBUG_FS", "RELAY"):
        assert opts[symbol]["status"] == "ok" and opts[symbol]["actual"] == "y"
    assert classic_four_off.read_text().count("# CONFIG_KPROBES is not set") == 1  # input untouched


def test_in_place_keeps_a_backup_and_apply_never_overwrites_the_input(classic_four_off):
    refused = run_cli("check-config", str(classic_four_off), "--no-runtime", "--apply", str(classic_four_off))
    assert refused.exit_code == 2 and "--in-place" in refused.stderr
    before = classic_four_off.read_text()
    result = run_cli("check-config", str(classic_four_off), "--no-runtime", "--in-place")
    assert result.exit_code == 0, result.output
    assert Path(str(classic_four_off) + ".bak").read_text() == before
    assert "CONFIG_KPROBES=y" in classic_four_off.read_text()


def test_preempt_tracer_is_blocked_down_to_a_settable_symbol(tmp_path):
    # Debian's kernel is PREEMPT_DYNAMIC (so PREEMPTION=y); without it,
    # PREEMPT_TRACER hides behind the preemption model.
    config = edited(debian_config("6.1"), tmp_path / "c", PREEMPT_DYNAMIC="n", PREEMPT_BUILD="n", PREEMPTION="n")
    result = run_cli("check-config", str(config), "-p", "ftrace", "--no-runtime", "--json")
    assert result.exit_code == 0  # PREEMPT_TRACER is only recommended
    ex = _options(json.loads(result.stdout))["PREEMPT_TRACER"]["explanation"]
    assert ex["kind"] == "blocked" and "PREEMPTION (=n)" in ex["depends"]
    assert "PREEMPTION" in ex["chain"] and len(ex["chain"]) >= 3


def test_debian_612_config_on_the_612_tree():
    result = run_cli("check-config", str(debian_config("6.12")), "-p", "systemtap", "-p", "debugfs", "-p", "module", "--no-runtime", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["analysis"]["depth"] == "kconfig" and "6.12" in doc["analysis"]["kconfig_tree"]
    assert doc["config"]["kernel_version"].startswith("6.12.")


def test_table_is_in_menuconfig_order():
    result = run_cli("check-config", str(debian_config("6.1")), "-p", "systemtap", "--no-runtime")
    symbols = re.findall(r"^ (CONFIG_\w+)\s", result.stdout, flags=re.M)
    # General setup, then General architecture-dependent options, then
    # loadable modules, ..., Kernel hacking: menuconfig's order, not the profile's.
    assert symbols[0] == "CONFIG_RELAY"
    assert symbols.index("CONFIG_KPROBES") < symbols.index("CONFIG_MODULES") < symbols.index("CONFIG_DEBUG_INFO")


def test_unsupported_kconfig_syntax_falls_back_to_flat(tmp_path):
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    (tree / "scripts").mkdir()
    (tree / "scripts" / "Kconfig.include").write_text("# nothing\n")
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "arch" / "x86" / "Kconfig").write_text("config X86\n\tdef_bool y\n")
    (tree / "Kconfig").write_text(
        'mainmenu "x"\nsource "scripts/Kconfig.include"\nsource "arch/$(SRCARCH)/Kconfig"\n'
        'config KPROBES\n\tbool "k"\n\tfrobnicate wildly\n'
    )
    (tree / ".config").write_text("CONFIG_KPROBES=y\n")
    result = run_cli("check-config", "--srctree", str(tree), "-p", "kprobes", "--no-runtime", "--json")
    assert result.exception is None and result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    assert doc["analysis"]["depth"] == "flat"
    assert "Kconfig:6" in doc["analysis"]["note"] and "flat" in doc["analysis"]["note"]


def test_a_directory_that_is_not_a_kernel_tree_exits_2(tmp_path):
    (tmp_path / ".config").write_text("CONFIG_KPROBES=y\n")
    result = run_cli("check-config", "--srctree", str(tmp_path), "--no-runtime")
    assert result.exit_code == 2 and result.exception is None
    assert str(tmp_path) in result.stderr


def test_flat_and_fix_do_not_mix(classic_four_off, tmp_path):
    result = run_cli("check-config", str(classic_four_off), "--flat", "--fix-fragment", str(tmp_path / "f"))
    assert result.exit_code == 2 and "drop --flat" in result.output
