"""Discovered checks without a VM: the plan around several modules, and the guest's
discovery scripts (module_templates/guest/discover/*.sh) under the host's static
busybox on fake debugfs, /proc and /sys/module roots."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import require
from dbgscaffold.runner import checks
from dbgscaffold.runner.build import load_order, modinfo_fields
from dbgscaffold.vm.initramfs import BUSYBOX

TEMPLATES = Path(__file__).resolve().parent.parent / "module_templates" / "guest" / "discover"


def two_modules(**kw) -> checks.RunPlan:
    mods = (checks.GuestModule("provider", "/run/payload/provider.ko"),
            checks.GuestModule("consumer", "/run/payload/consumer.ko", "n=3"))
    return checks.RunPlan(mods, None, discover=True, **kw)


def test_the_plan_loads_in_order_discovers_and_unloads_in_reverse():
    names = [c.name for c in checks.plan(two_modules(user_scripts=("/run/payload/user/t.sh",)), (6, 1, 0))]
    assert names == [
        "insmod provider", "insmod consumer n=3",
        "discovered: what provider consumer created, with its mode",
        "discovered: every readable file reads",
        "discovered: writable numbers and Y/N take their value back",
        "rmmod consumer", "rmmod provider",
        "everything provider consumer created is gone after rmmod",
        "load/unload x3",
        "insmod provider for tests/", "insmod consumer for tests/", "tests/t.sh",
        "rmmod consumer after tests/", "rmmod provider after tests/",
    ]
    plan = checks.plan(two_modules(), (6, 1, 0))
    assert plan[0].body == "discover_before; load_module provider /run/payload/provider.ko || exit 1"  # the listing first
    assert plan[1].body == "load_module consumer /run/payload/consumer.ko n=3 || exit 1"
    assert [c.user_script for c in plan[2:5]] == [f"{checks.GUEST_DISCOVER}/{n}" for n, _ in checks.DISCOVER_SCRIPTS]
    cycle = next(c for c in plan if c.name == "load/unload x3").body
    assert cycle.index("provider.ko") < cycle.index("consumer.ko n=3") < cycle.index("rmmod consumer") < cycle.index("rmmod provider")


def test_without_discovery_there_is_no_listing():
    plan = checks.plan(checks.RunPlan((checks.GuestModule("m", "/m.ko"),)), (6, 12, 0))
    assert [c.name for c in plan] == ["insmod m", "rmmod m", "load/unload x3"]
    assert "discover_before" not in plan[0].body


def test_the_script_exports_every_module_and_is_valid_ash(tmp_path):
    require(BUSYBOX.is_file(), "static busybox")
    text = checks.script(two_modules(), (6, 1, 0), check_timeout=5)
    assert "MODULES='provider consumer'" in text and "DBGS_DISCOVER_MAX=200" in text
    for n, _ in checks.DISCOVER_SCRIPTS:
        assert f"run_user_check {3 + [x for x, _ in checks.DISCOVER_SCRIPTS].index(n)} " in text
    path = tmp_path / "run.sh"
    path.write_text(text)
    assert subprocess.run([str(BUSYBOX), "sh", "-n", str(path)], capture_output=True).returncode == 0
    for name, _ in checks.DISCOVER_SCRIPTS:
        assert subprocess.run([str(BUSYBOX), "sh", "-n", str(TEMPLATES / name)], capture_output=True).returncode == 0


def test_the_guest_files_hold_the_library_and_each_discovery_script():
    files = {f.dest: f for f in checks.guest_files()}
    assert set(files) == {checks.GUEST_LIB, *(f"{checks.GUEST_DISCOVER}/{n}" for n, _ in checks.DISCOVER_SCRIPTS)}


# ---------------------------------------------------------------- the guest side, on fake roots


@pytest.fixture
def roots(tmp_path):
    """A fake debugfs with the kernel's own files, /proc, /sys/module; run(script) sources the library."""
    require(BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    debugfs, proc, sysmod = tmp_path / "debugfs", tmp_path / "proc", tmp_path / "sysmodule"
    for d in (debugfs / "block", debugfs / "tracing" / "events", proc / "1", proc / "sys" / "kernel", sysmod):
        d.mkdir(parents=True)
    (debugfs / "block" / "queue").write_text("x\n")
    (proc / "version").write_text("Linux\n")
    lib = tmp_path / "ktap.sh"
    lib.write_text(checks.guest_library())
    out = tmp_path / "fd3"

    def run(script: str) -> tuple[int, str]:
        proc_ = subprocess.run(
            [str(BUSYBOX), "sh", "-c", f"exec 3>>{out}\n. {lib}\n{script}\n"], capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL, cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "DBGS_TMP": str(tmp_path), "DBGS_KMSG": str(tmp_path / "kmsg"),
                 "DBGS_DEBUGFS": str(debugfs), "DBGS_PROC": str(proc), "DBGS_SYSMODULE": str(sysmod),
                 "MODULES": "knobs", "DBGS_DISCOVER_MAX": "200"})
        text = out.read_text() if out.exists() else ""
        out.unlink(missing_ok=True)
        return proc_.returncode, text + proc_.stderr

    return debugfs, proc, sysmod, tmp_path, run


def _load(debugfs: Path, proc: Path, sysmod: Path) -> None:
    """What a module's init makes: a debugfs tree, a /proc file, a parameter."""
    (debugfs / "knobs" / "regs").mkdir(parents=True)
    for name, text, mode in (("level", "3\n", 0o644), ("enabled", "Y\n", 0o644), ("name", "knobs\n", 0o444),
                             ("regs/ctrl", "0x00000001\n", 0o644), ("secret", "s\n", 0o200), ("open", "1\n", 0o666)):
        (debugfs / "knobs" / name).write_text(text)
        os.chmod(debugfs / "knobs" / name, mode)
    (proc / "knobs").write_text("knobs ok\n")
    (sysmod / "knobs" / "parameters").mkdir(parents=True)
    (sysmod / "knobs" / "parameters" / "debug_value").write_text("7\n")
    os.chmod(sysmod / "knobs" / "parameters" / "debug_value", 0o644)
    (debugfs / "tracing" / "events" / "knobs").mkdir()  # the tracefs automount: not the module's


def _load_between_listings(roots) -> None:
    """The listing before insmod, what the module makes, the listing after."""
    debugfs, proc, sysmod, _, run = roots
    run("discover_before")
    _load(debugfs, proc, sysmod)
    run("discover_created knobs; discover_modes")


def test_created_lists_only_what_appeared_after_the_listing_before(roots):
    debugfs, proc, sysmod, tmp, run = roots
    assert run("discover_before")[0] == 0
    _load(debugfs, proc, sysmod)
    assert run("discover_created knobs")[0] == 0
    created = (tmp / ".dbgs-created").read_text().split()
    k = str(debugfs / "knobs")
    assert created == sorted([k, f"{k}/enabled", f"{k}/level", f"{k}/name", f"{k}/open", f"{k}/regs", f"{k}/regs/ctrl",
                              f"{k}/secret", str(proc / "knobs")]) + [str(sysmod / "knobs" / "parameters" / "debug_value")]


def test_files_names_each_with_its_mode_and_fails_a_world_writable_one(roots):
    debugfs, proc, sysmod, _, run = roots
    run("discover_before")
    _load(debugfs, proc, sysmod)
    status, out = run(f". {TEMPLATES / 'files.sh'}; exit $DBGS_FAILED")
    assert status == 1
    assert f"ok 1 {debugfs}/knobs/ (directory, mode 755)" in out
    assert f"ok 2 {debugfs}/knobs/enabled (mode 644)" in out
    assert f"not ok 5 {debugfs}/knobs/open (mode 666)" in out and "world-writable" in out
    assert f"ok 10 {sysmod}/knobs/parameters/debug_value (mode 644)" in out
    assert "not ok" not in out.replace(f"not ok 5 {debugfs}/knobs/open", "")


def test_reads_skips_what_the_mode_does_not_let_anyone_read(roots):
    debugfs, proc, sysmod, _, run = roots
    _load_between_listings(roots)
    status, out = run(f". {TEMPLATES / 'reads.sh'}; exit $DBGS_FAILED")
    assert status == 0, out
    assert f"ok 1 {debugfs}/knobs/enabled reads" in out and f"{debugfs}/knobs/secret reads # SKIP mode 200" in out
    assert f"{proc}/knobs reads" in out and "regs reads" not in out  # directories are not read


def test_writes_takes_back_numbers_hex_and_yn_and_leaves_text_alone(roots):
    debugfs, proc, sysmod, _, run = roots
    _load_between_listings(roots)
    status, out = run(f". {TEMPLATES / 'writes.sh'}; exit $DBGS_FAILED")
    assert status == 0, out
    took = sorted(line.split(" ", 2)[2] for line in out.splitlines() if line.startswith("ok "))
    assert took == sorted([f"{debugfs}/knobs/enabled takes its value Y back", f"{debugfs}/knobs/level takes its value 3 back",
                           f"{debugfs}/knobs/open takes its value 1 back", f"{debugfs}/knobs/regs/ctrl takes its value 0x00000001 back",
                           f"{sysmod}/knobs/parameters/debug_value takes its value 7 back"])
    assert "knobs/name" not in out and "secret" not in out  # text, and a write-only file


@pytest.mark.parametrize("content, value", [
    ("7\n", "7"), ("-12\n", "-12"), ("+3", "+3"), ("0x00ff\n", "0x00ff"), ("Y\n", "Y"), ("N", "N"),
    ("abc\n", ""), ("0xzz\n", ""), ("1 2\n", ""), ("1\n2\n", ""), ("", ""), ("-\n", ""), ("12a\n", ""), ("yes\n", ""),
])
def test_only_a_single_number_or_y_n_counts_as_a_value(roots, content, value):
    _, _, _, tmp, run = roots
    (tmp / "f").write_text(content)
    status, out = run(f'_value {tmp / "f"}; printf "[%s]" "$_v" >&3')
    assert status == 0 and out == f"[{value}]"


def test_a_failed_insmod_says_why_with_a_fix(roots):
    _, _, _, tmp, run = roots
    (tmp / ".err").write_text("insmod: can't insert 'x.ko': unknown symbol in module, or unknown parameter\n")
    for kernel, fix in (("x: Unknown symbol nonexistent_helper (err -2)", "load that module first"),
                        ("x: `abc' invalid for parameter `count'", "must match its module_param()s"),
                        ("", "its init function failed")):
        dmesg = tmp / "dmesg"
        dmesg.write_text(f"#!/bin/sh\ncat <<'EOF'\n[    0.9] pid_max: default: 32768\n[    1.0] {kernel}\nEOF\n")
        dmesg.chmod(0o755)
        status, out = run(f"DBGS_DMESG={dmesg}; insmod_failed x")
        assert status == 1 and "# insmod: can't insert 'x.ko'" in out and fix in out, out
        assert ("# kernel: " in out) == bool(kernel)


# ---------------------------------------------------------------- build helpers (pure)


def test_modinfo_fields_and_load_order():
    info = modinfo_fields(b"license=GPL\0depends=pair_provider,other\0alias=a\0alias=b\0\0name=pair_consumer\0vermagic=6.1 SMP\0")
    assert info["depends"] == ["pair_provider,other"] and info["alias"] == ["a", "b"] and info["name"] == ["pair_consumer"]
    # modules.order says consumer first; it depends on provider, which moves before it; 'other' is not ours
    assert load_order([("consumer", ("provider", "other")), ("provider", ()), ("solo", ())]) == ["provider", "consumer", "solo"]
    with pytest.raises(ValueError, match="cycle"):
        load_order([("a", ("b",)), ("b", ("a",))])


def test_a_parameter_the_kernel_ignored_fails_the_load(roots):
    """Modern kernels load a module despite an unknown parameter ("ignored"): a typo in
    [test] params would go unseen, so load_module fails on it. insmod and dmesg are
    shell functions here: nothing is loaded on the host."""
    _, _, _, tmp, run = roots
    fake = ('insmod() { echo "[    2.0] knobs: unknown parameter \'debug_valu\' ignored" >> "$DBGS_TMP/log"; }\n'
            'logged() { cat "$DBGS_TMP/log"; }\nDBGS_DMESG=logged\necho "[    1.0] knobs: unknown parameter \'old\' ignored" > "$DBGS_TMP/log"\n')
    status, out = run(fake + "load_module knobs /k.ko debug_valu=7")
    assert status == 1 and "# kernel: [    2.0] knobs: unknown parameter 'debug_valu' ignored" in out and "Fix: it has no such parameter" in out
    assert "'old'" not in out  # an earlier load's message is not this one's
    status, out = run(fake.replace("debug_valu", "other") + "load_module other /k.ko x=1")  # another module's message
    assert status == 0 and out == ""
    status, out = run('insmod() { echo "insmod: can\'t insert \'/k.ko\': invalid parameter" >&2; return 1; }\nDBGS_DMESG=true\n'
                      "load_module knobs /k.ko debug_value=abc")
    assert status == 1 and "# insmod: can't insert '/k.ko': invalid parameter" in out and "Fix: its init function failed" in out
