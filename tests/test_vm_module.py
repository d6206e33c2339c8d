"""`dbgscaffold test` end to end on both Debian kernels (6.1 and 6.12).

A generated module passes every check; a NULL dereference in the string write
handler is a crash (exit 6) attributed to the check that wrote; an init that
never returns is a timeout (exit 5) with no QEMU left behind; the user's
tests/*.sh run with the helpers. Each VM run is ~3-4 s under TCG here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import KERNEL_SERIES, qemu_processes, require, require_tools, run_cli
from dbgscaffold.vm import images, initramfs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=KERNEL_SERIES)
def series(request) -> str:
    require_tools("qemu-system-x86_64", "make", "strip")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    pairs = [p for p in images.scan_pairs().pairs if p.release.startswith(request.param + ".")]
    require(bool(pairs), f"a {request.param} kernel image + headers pair")
    if request.param == "6.12":
        require(shutil.which("zstd") is not None, "'zstd' on PATH (6.12 is zstd-compressed)")
    return request.param


def new_module(tmp_path: Path, name: str) -> Path:
    r = run_cli("new", name, "-o", str(tmp_path / name))
    assert r.exit_code == 0, r.output
    return tmp_path / name


def vm_test(project: Path, series: str, tmp_path: Path, *extra: str) -> tuple[int, dict, str]:
    report = tmp_path / f"{project.name}-{series}.json"
    junit = tmp_path / f"{project.name}-{series}.xml"
    r = run_cli("test", str(project), "--kernel", series, "--json", str(report), "--junit", str(junit), *extra)
    assert r.exception is None, repr(r.exception)
    doc = json.loads(report.read_text()) if report.exists() else {}
    return r.exit_code, doc, r.output




def test_a_new_module_passes_every_check(series, tmp_path):
    project = new_module(tmp_path, "mydebug")
    tests = project / "tests"
    tests.mkdir()
    (tests / "mine.sh").write_text('expect_read "$ROOT/a" \'5\\n\'\nok "my own check"\n')
    (tests / "mine.sh").chmod(0o755)
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 0, output
    run = doc["runs"][0]
    assert run["kernel"].startswith(series + ".") and run["verdict"].startswith("pass")
    statuses = {c["name"]: c["status"] for c in run["checks"]}
    assert set(statuses.values()) <= {"pass", "skip"}, statuses
    for name in ("insmod mydebug", "a: write 255, read it back", "subdir/c: a 32-byte write is rejected (ENOSPC)",
                 "/sys/kernel/debug/mydebug is gone after rmmod", "load/unload x3", "tests/mine.sh"):
        assert statuses[name] == "pass", name
    if series == "6.1":  # a blob is read-only before 6.8, whatever its mode, even for root
        assert statuses["b: a write is rejected even for root (read-only)"] == "pass"
    else:  # from 6.8 only the mode bits guard a blob, and root is not stopped by them
        assert statuses["b: write rejection not checked"] == "skip"
    assert run["taint"]["letters"] == "OE" and run["accel"] in ("tcg", "kvm")
    assert all(c["seconds"] is not None for c in run["checks"])
    assert '<testsuite name="mydebug on' in (tmp_path / f"mydebug-{series}.xml").read_text()
    print(f"\n{run['kernel']}: build {run['build_seconds']:.2f} s, boot {run['boot_seconds']:.2f} s, VM {run['vm_seconds']:.2f} s")


def require_6_1() -> str:
    require_tools("qemu-system-x86_64", "make", "strip")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    require(any(p.release.startswith("6.1.") for p in images.scan_pairs().pairs), "a 6.1 kernel image + headers pair")
    return "6.1"


def test_a_failing_user_check_fails_the_run(tmp_path):
    """One kernel is enough for the user-check path."""
    series = require_6_1()
    project = new_module(tmp_path, "mine")
    (project / "tests").mkdir()
    (project / "tests" / "wrong.sh").write_text('expect_read "$ROOT/a" \'6\\n\'\n')
    (project / "tests" / "wrong.sh").chmod(0o755)
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 1, output
    failed = [c for c in doc["runs"][0]["checks"] if c["status"] != "pass"]
    assert [c["name"] for c in failed] == ["tests/wrong.sh"]
    assert "not ok 1 read /sys/kernel/debug/mine/a" in failed[0]["diagnostics"]
    assert any(d.startswith("expected:") for d in failed[0]["diagnostics"]), failed[0]["diagnostics"]
    assert "1 of" in doc["runs"][0]["verdict"]


def test_a_null_dereference_in_the_write_handler_is_a_crash_in_that_check(series, tmp_path):
    project = new_module(tmp_path, "broken")
    source = project / "broken_debugfs.c"
    text = source.read_text()
    head, tail = text.split("static ssize_t textbuf_write", 1)
    tail = tail.replace("struct dbgscaffold_textbuf *tb = file->private_data;", "struct dbgscaffold_textbuf * volatile nullp = NULL;\n\tstruct dbgscaffold_textbuf *tb = nullp;", 1)
    source.write_text(head + "static ssize_t textbuf_write" + tail)
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 6, output
    run = doc["runs"][0]
    crashed = [c for c in run["checks"] if c["status"] == "crashed"]
    assert crashed and crashed[0]["name"] == "subdir/c: replace (31 bytes), exact read-back", run["checks"]
    assert "NULL pointer dereference" in crashed[0]["crash"]["title"] and "textbuf_write" in crashed[0]["crash"]["title"]
    assert "D" in run["taint"]["letters"]
    assert "in check" in run["verdict"] and "textbuf_write" in output
    assert "<error" in (tmp_path / f"broken-{series}.xml").read_text()
    # decoded from the unstripped .ko's DWARF: the faulting line dereferences the NULL tb
    frames = [f for f in run["crashes"][0]["frames"] if f["exact"]]
    assert frames and frames[0]["file"] == "broken_debugfs.c" and frames[0]["function"] == "textbuf_write", run["crashes"][0]["frames"]
    written = source.read_text().splitlines()
    assert "tb->" in frames[0]["source"] and written[frames[0]["line"] - 1].strip() == frames[0]["source"]
    # the shared text-buffer handler serves every string entry: the entry is that of the check it crashed in
    assert frames[0]["entry"] == "subdir/c"
    assert f"broken_debugfs.c:{frames[0]['line']} (textbuf_write, entry 'subdir/c'): {frames[0]['source']}" in output


def test_an_init_that_never_returns_is_a_timeout_on_the_host_too(series, tmp_path):
    """The guest's per-check limit set beyond the host's: the host's whole-run
    timeout must catch it (tests/test_vm_check_timeout.py has the guest's side)."""
    project = new_module(tmp_path, "stuck")
    source = project / "stuck_debugfs.c"
    text = source.read_text()
    text = text.replace("#include <linux/init.h>", "#include <linux/init.h>\n#include <linux/sched.h>", 1)
    text = text.replace("\treturn 0;\n}\n\nstatic void __exit", "\tfor (;;)\n\t\tschedule_timeout_interruptible(HZ);\n\treturn 0;\n}\n\nstatic void __exit", 1)
    source.write_text(text)
    code, doc, output = vm_test(project, series, tmp_path, "--timeout", "10", "--check-timeout", "300", "--keep-logs", str(tmp_path / "logs"))
    assert code == 5, output
    assert "dbgscaffold: begin check 1" in (tmp_path / "logs" / "console.log").read_text()
    assert (tmp_path / "logs" / "results.log").read_text().startswith("KTAP version 1\n1..")
    run = doc["runs"][0]
    assert run["ended"] == "timeout" and "stuck in check 1 'insmod stuck'" in run["verdict"]
    assert run["checks"][0]["status"] == "timeout"
    results_socket = next(a for a in run["qemu_argv"] if "results.sock" in a).split("path=")[1].split(",")[0]
    assert qemu_processes(results_socket) == []


def test_every_entry_type_passes_its_generated_checks(series, tmp_path):
    """The example spec uses every type: each derived check holds on a real kernel."""
    r = run_cli("new", "--spec", str(Path(__file__).resolve().parent.parent / "generator" / "specs" / "example.toml"), "-o", str(tmp_path / "every"))
    assert r.exit_code == 0, r.output
    code, doc, output = vm_test(tmp_path / "every", series, tmp_path)
    assert code == 0, output
    statuses = [c["status"] for c in doc["runs"][0]["checks"]]
    assert len(statuses) > 60 and set(statuses) <= {"pass", "skip"}


def test_a_module_that_disagrees_with_its_spec_fails_those_checks(tmp_path):
    """The checks are shown to fail on a wrong answer: a starts at 6 with mode 0600,
    and c's buffer is one byte larger than the spec says."""
    series = require_6_1()
    project = new_module(tmp_path, "liar")
    source = project / "liar_debugfs.c"
    text = source.read_text()
    text = text.replace("static u8 liar_a = 5;", "static u8 liar_a = 6;", 1)
    text = text.replace('debugfs_create_u8("a", 0644,', 'debugfs_create_u8("a", 0600,', 1)
    text = text.replace("static char liar_subdir_c_data[32]", "static char liar_subdir_c_data[33]", 1)
    source.write_text(text)
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 1, output
    failed = {c["name"]: c["diagnostics"] for c in doc["runs"][0]["checks"] if c["status"] != "pass"}
    assert sorted(failed) == ["a: mode 644", "a: reads its initial value", "subdir/c: a 32-byte write is rejected (ENOSPC)"], failed
    assert "mode of /sys/kernel/debug/liar/a is 600, expected 644" in failed["a: mode 644"]
    assert any(d.startswith("read:") and "6" in d for d in failed["a: reads its initial value"])


DRIVER_SPEC = """\
[module]
name = "drvliar"

[[entry]]
path = "threshold"
type = "attribute"
format = "0x%08llx\\n"

[[entry]]
path = "regs"
type = "regset32"
registers = [ { name = "CTRL", offset = 0x0 }, { name = "STATUS", offset = 0x8, value = 0x80000001 } ]

[[entry]]
path = "dev/latest"
type = "symlink"
target = "regs"
"""


def test_the_driver_kinds_checks_fail_on_a_wrong_answer(tmp_path):
    """attribute, regset32 and symlink: the generated module passes; one that prints the
    attribute in another format, holds another register value and links elsewhere fails
    exactly those checks."""
    series = require_6_1()
    (tmp_path / "drv.toml").write_text(DRIVER_SPEC)
    r = run_cli("new", "--spec", str(tmp_path / "drv.toml"), "-o", str(tmp_path / "drvliar"))
    assert r.exit_code == 0, r.output
    project = tmp_path / "drvliar"
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 0, output
    source = project / "drvliar_debugfs.c"
    text = source.read_text()
    for old, new in (('"0x%08llx\\n"', '"%llu\\n"'), ("[2] = 0x80000001U", "[2] = 0x80000002U"), ('"../regs"', '"../threshold"')):
        assert old in text, old
        text = text.replace(old, new, 1)
    source.write_text(text)
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 1, output
    failed = {c["name"]: c["diagnostics"] for c in doc["runs"][0]["checks"] if c["status"] != "pass"}
    assert sorted(failed) == ["dev/latest: a symlink to ../regs", "regs: a write is rejected even for root (read-only)",
                              "regs: reads its initial value", "threshold: reads a number in its format"], failed
    assert failed["dev/latest: a symlink to ../regs"] == ["it points at '../threshold'"]


DEVICE_SPEC = """\
[module]
name = "devmod"

[instance]
struct = "mydev"
demo = ["dev0", "dev1"]

[[instance.entry]]
path = "count"
type = "u32"
field = "count"
value = 5

[[instance.entry]]
path = "on"
type = "bool"
field = "on"
"""


def test_each_demo_device_has_its_own_files_and_a_shared_value_is_caught(tmp_path):
    """Per-device instances: both demo devices pass every check; a module whose devices
    share one counter (what a driver gets wrong with a static) fails the check that a
    write to one device leaves the other alone."""
    series = require_6_1()
    (tmp_path / "dev.toml").write_text(DEVICE_SPEC)
    r = run_cli("new", "--spec", str(tmp_path / "dev.toml"), "-o", str(tmp_path / "devmod"))
    assert r.exit_code == 0, r.output
    project = tmp_path / "devmod"
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 0, output
    names = [c["name"] for c in doc["runs"][0]["checks"]]
    for n in ("dev0: directory exists", "dev1/count: reads its initial value", "count: a write to dev0 leaves dev1 alone",
              "on: a write to dev0 leaves dev1 alone", "dev1/on: write 1, reads Y"):
        assert n in names, n
    source = project / "devmod_debugfs.c"
    text = source.read_text()
    assert "&dev->count" in text
    text = text.replace("&dev->count", "&shared_count", 1).replace("/**\n * devmod_debugfs_add()", "static u32 shared_count = 5;\n\n/**\n * devmod_debugfs_add()", 1)
    source.write_text(text)
    code, doc, output = vm_test(project, series, tmp_path)
    assert code == 1, output
    failed = sorted(c["name"] for c in doc["runs"][0]["checks"] if c["status"] != "pass")
    assert "count: a write to dev0 leaves dev1 alone" in failed and all("count" in n for n in failed), failed


def test_all_kernels_runs_the_module_on_every_pair(tmp_path):
    require_tools("qemu-system-x86_64", "make", "strip", "zstd")
    releases = sorted(p.release for p in images.scan_pairs().pairs)
    for s in KERNEL_SERIES:
        require(any(r.startswith(s + ".") for r in releases), f"a {s} kernel image + headers pair")
    project = new_module(tmp_path, "allk")
    report = tmp_path / "all.json"
    r = run_cli("test", str(project), "--all-kernels", "--json", str(report))
    assert r.exit_code == 0, r.output
    doc = json.loads(report.read_text())
    assert sorted(run["kernel"] for run in doc["runs"]) == releases
    assert all(run["verdict"].startswith("pass") and run["exit_code"] == 0 for run in doc["runs"])
    for release in releases:
        assert f"{release}: pass" in r.stdout


def test_kernel_and_all_kernels_do_not_mix(tmp_path):
    project = new_module(tmp_path, "mix")
    r = run_cli("test", str(project), "--kernel", "6.1", "--all-kernels")
    assert r.exit_code == 2 and "not both" in r.output and r.exception is None
