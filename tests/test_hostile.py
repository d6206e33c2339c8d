"""Hostile code, end to end (issue 12): untrusted builds run in the sandbox, a module's
forged results are worth nothing, an oversized submission is refused, a printk flood ends
in a bounded log, and none of it reaches the grader's machine or reports.

One `lab grade` of a hostile class (debugfs-basics, Debian's 6.1, in the VM): a Kbuild that
runs a command on the grader's machine, an .incbin of a file only root can read, a module
that writes fake KTAP to the console, /dev/kmsg and the results port, a printk flood, an
oversized tarball and an oversized .ko; and `test --untrusted` of a project whose Kbuild
runs a command and one whose Kbuild starts a fork bomb.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import IN_CI, require, require_tools, run_cli
from dbgscaffold import sandbox
from dbgscaffold.lab.manifest import find_lab
from dbgscaffold.vm import images, initramfs

pytestmark = pytest.mark.slow

SERIES = "6.1"


@pytest.fixture(scope="module")
def kernel() -> str:
    require_tools("qemu-system-x86_64", "make", "strip", "bwrap")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    require(any(p.release.startswith(SERIES + ".") for p in images.scan_pairs().pairs), f"a {SERIES} kernel image + headers pair")
    why = sandbox.available()
    if why and IN_CI:
        pytest.fail(f"the sandbox does not work here: {why}")
    require(not why, f"a working sandbox ({why})")
    return SERIES


@pytest.fixture
def secret():
    """A file only its owner can read, outside every directory the sandbox hides (as root:
    only the sandbox's nobody keeps it out), with a random content."""
    text = f"SECRET-{secrets.token_hex(12)}"
    where = Path("/var/lib") if os.geteuid() == 0 else Path.home()
    path = where / f".dbgscaffold-test-secret-{secrets.token_hex(4)}"
    path.write_text(text + "\n")
    path.chmod(0o600)
    yield path, text
    path.unlink(missing_ok=True)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))


INIT = "static int __init mydebug_init(void)\n{\n\tstruct dentry *subdir;\n"

FORGE = r"""
static void forge(void)
{
	static const char fake[] = "KTAP version 1\n1..13\nok 1 a\nok 2 b\nok 3 c\nok 4 d\n# dbgscaffold: done 1 0 0\n";
	struct file *f = filp_open("/dev/ttyS1", O_WRONLY | O_NOCTTY, 0);
	loff_t pos = 0;
	int i;

	for (i = 1; i <= 13; i++)
		pr_emerg("ok %d forged on the console and in /dev/kmsg\n", i);
	if (IS_ERR(f))
		return;
	kernel_write(f, fake, sizeof(fake) - 1, &pos);
	filp_close(f, NULL);
}

"""

FLOOD = r"""
static void flood(void)
{
	int i;

	for (i = 0; i < 1000000; i++) {
		pr_emerg("flood %07d ................................................................................\n", i);
		cond_resched();
	}
}

"""

DAEMON = r"""
static void daemonize(void)
{
	static char *argv[] = { "/bin/sh", "-c", "while :; do echo 'ok 1 daemon' > /dev/ttyS1; sleep 0.2; done", NULL };
	static char *envp[] = { "PATH=/bin", NULL };

	call_usermodehelper(argv[0], argv, envp, UMH_WAIT_EXEC);
}

"""

INCBIN = r"""
asm(".section .rodata\n.global mydebug_secret\nmydebug_secret:\n.incbin \"%s\"\n.byte 0\n.previous\n");
extern const char mydebug_secret[];
"""


def _hostile_class(root: Path, tmp: Path, secret_path: Path, marker: Path) -> None:
    def solution(name: str) -> Path:
        assert run_cli("lab", "solution", "debugfs-basics", str(root / name)).exit_code == 0
        return root / name / "mydebug.c"

    solution("alice")  # honest, for comparison
    assert run_cli("lab", "start", "debugfs-basics", str(root / "bob")).exit_code == 0  # an honest skeleton
    # A Kbuild and a Makefile that run a command on the grader's machine (they are never used)
    shell = solution("mallory-kbuild").parent
    for name in ("Kbuild", "Makefile"):
        (shell / name).write_text(f"$(shell touch {marker})\nobj-m := mydebug.o\n")
    # A file only root can read, embedded in the module and served from the blob "b"
    c = solution("mallory-incbin")
    _edit(c, "static u8 a = 5;\n", "static u8 a = 5;\n" + INCBIN % secret_path)
    _edit(c, "\t.data = b_data,\n", "\t.data = (void *)mydebug_secret,\n")
    # The lab's hidden checks are world-readable files on the grader's machine
    hidden = next(c.path for c in find_lab("debugfs-basics").checks if c.hidden)
    c = solution("mallory-hidden")
    _edit(c, "static u8 a = 5;\n", "static u8 a = 5;\n" + INCBIN % hidden)
    _edit(c, "\t.data = b_data,\n", "\t.data = (void *)mydebug_secret,\n")
    # A process left running in the guest, writing fake results for whoever comes next
    c = solution("mallory-daemon")
    _edit(c, INIT, DAEMON + INIT)
    _edit(c, "\tstruct dentry *subdir;\n\n", "\tstruct dentry *subdir;\n\n\tdaemonize();\n")
    solution("mallory-daemon-next")  # graded right after it (-j 1: in sorted order)
    # The skeleton plus fake KTAP everywhere it can write
    assert run_cli("lab", "start", "debugfs-basics", str(root / "mallory-forger")).exit_code == 0
    c = root / "mallory-forger" / "mydebug.c"
    _edit(c, INIT, FORGE + INIT)
    _edit(c, "\tstruct dentry *subdir;\n\n", "\tstruct dentry *subdir;\n\n\tforge();\n")
    # 100 MB of printk to the console
    c = solution("mallory-flood")
    _edit(c, INIT, FLOOD + INIT)
    _edit(c, "\tstruct dentry *subdir;\n\n", "\tstruct dentry *subdir;\n\n\tflood();\n")
    # A module of 20 MiB
    c = solution("mallory-bigko")
    _edit(c, "static u8 a = 5;\n", "static u8 a = 5;\nstatic const char mydebug_big[20 << 20] = { 1 };\n")
    _edit(c, "\tstruct dentry *subdir;\n\n", "\tstruct dentry *subdir;\n\n\tpr_info(\"%d\\n\", mydebug_big[jiffies % sizeof(mydebug_big)]);\n")
    # A tarball of 21 MiB
    big = tmp / "big"
    solution("x")
    (root / "x").rename(big)
    (big / "data.bin").write_bytes(os.urandom(21 << 20))
    with tarfile.open(root / "mallory-bigtar.tgz", "w:gz", compresslevel=1) as tar:
        tar.add(big, arcname="big")


def test_a_hostile_class_is_graded_with_no_effect_on_the_host(kernel, tmp_path, secret):
    secret_path, secret_text = secret
    marker = Path(f"/tmp/dbgscaffold-pwned-{secrets.token_hex(4)}")
    subs = tmp_path / "subs"
    subs.mkdir()
    _hostile_class(subs, tmp_path, secret_path, marker)
    out = tmp_path / "report" / "grades.csv"
    t0 = time.monotonic()
    r = run_cli("lab", "grade", str(subs), "--lab", "debugfs-basics", "--kernel", kernel, "--out", str(out), "-j", "1",
                "--timeout", "40", "--check-timeout", "5")
    seconds = time.monotonic() - t0
    assert r.exception is None and r.exit_code == 0, r.output
    assert not marker.exists(), "a submission's Kbuild ran a command on the grader's machine"
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    doc = json.loads(out.with_suffix(".json").read_text())
    students = {s["student"]: s for s in doc["students"]}
    everything = out.read_text() + out.with_suffix(".json").read_text() + r.output
    assert secret_text not in everything, "a host secret reached a report"
    print(f"\nhostile class graded in {seconds:.1f} s: " + "; ".join(f"{k} {v['total']} exit {v['exit']}" for k, v in rows.items()))

    assert (rows["alice"]["total"], rows["alice"]["exit"]) == ("12", "0"), (students["alice"]["verdict"], students["alice"].get("build_errors"))
    assert (rows["mallory-kbuild"]["total"], rows["mallory-kbuild"]["exit"]) == ("12", "0")  # built with the lab's Kbuild
    assert rows["mallory-incbin"]["exit"] == "3" and rows["mallory-incbin"]["total"] == "0"
    hidden_text = next(c.path for c in find_lab("debugfs-basics").checks if c.hidden).read_text().strip().splitlines()[-1]
    assert rows["mallory-hidden"]["exit"] == "3", rows["mallory-hidden"]  # the lab's files do not exist in the sandbox
    assert hidden_text not in out.with_suffix(".json").read_text()
    # the daemon's lines count against it, and the next student gets a fresh guest
    assert students["mallory-daemon"].get("forged_lines", {}).get("count", 0) > 0, students["mallory-daemon"]
    assert (rows["mallory-daemon-next"]["total"], rows["mallory-daemon-next"]["exit"]) == ("12", "0"), rows["mallory-daemon-next"]
    assert "forged_lines" not in students["mallory-daemon-next"], students["mallory-daemon-next"]
    # the fake results are worth nothing: the forger scores what the honest skeleton scores
    assert rows["mallory-forger"]["total"] == rows["bob"]["total"] and rows["bob"]["total"] != "12"
    forged = students["mallory-forger"].get("forged_lines")
    assert forged and forged["count"] >= 4 and any("ok 1 a" in x for x in forged["lines"]), students["mallory-forger"]
    assert "forged_lines" not in students["bob"]
    assert rows["mallory-flood"]["exit"] in ("5", "6") and rows["mallory-flood"]["total"] != "12", rows["mallory-flood"]
    assert rows["mallory-bigko"]["exit"] == "2" and "refused" in rows["mallory-bigko"]["verdict"], rows["mallory-bigko"]
    assert rows["mallory-bigtar"]["total"] == "0" and "refused" in rows["mallory-bigtar"]["verdict"], rows["mallory-bigtar"]
    assert len(out.with_suffix(".json").read_bytes()) < 4 << 20  # the flood's log is not in it whole


def _kbuild_project(tmp_path: Path, name: str, kbuild_extra: str) -> Path:
    project = tmp_path / name
    assert run_cli("new", name, "-o", str(project)).exit_code == 0
    kbuild = project / "Kbuild"
    kbuild.write_text(kbuild_extra + kbuild.read_text())
    return project


def test_untrusted_builds_its_own_kbuild_in_the_sandbox(kernel, tmp_path):
    marker = Path(f"/tmp/dbgscaffold-pwned-{secrets.token_hex(4)}")
    project = _kbuild_project(tmp_path, "shelly", f"$(shell touch {marker})\n")
    r = run_cli("test", str(project), "--kernel", kernel)
    assert r.exit_code == 0, r.output
    assert marker.exists(), "without --untrusted the Kbuild's command runs (so this test can fail)"
    marker.unlink()
    r = run_cli("test", str(project), "--kernel", kernel, "--untrusted")
    assert r.exception is None and r.exit_code == 0, r.output
    assert not marker.exists(), "--untrusted: the Kbuild's command ran on the host"


def _bomb_processes() -> list[str]:
    """The fork bomb's shells (other processes of nobody on the machine are not ours to count)."""
    proc = subprocess.run(["ps", "-u", str(sandbox.NOBODY), "-o", "pid=,args="], capture_output=True, text=True, check=False)
    return [line for line in proc.stdout.splitlines() if "f | f" in line]


def test_a_fork_bomb_in_a_kbuild_stops_at_the_sandbox_limits(kernel, tmp_path):
    require(os.geteuid() == 0, "root (the sandbox then runs as nobody, whose processes we can count)")
    assert not _bomb_processes()
    project = _kbuild_project(tmp_path, "bomb", "$(shell sh -c 'f() { f | f & }; f')\n")
    t0 = time.monotonic()
    r = run_cli("test", str(project), "--kernel", kernel, "--untrusted")
    seconds = time.monotonic() - t0
    assert r.exception is None and r.exit_code in (0, 3), r.output  # make may find no process slot left: a build failure
    assert not _bomb_processes(), "processes of the sandbox outlived it"
    print(f"\nfork bomb in a Kbuild: exit {r.exit_code} in {seconds:.1f} s")
    assert seconds < 300


BOUNDED = {
    # name: (what the module's init does, the exits that are right)
    "flood": ("for (i = 0; i < 1000000; i++) {\n\t\tpr_emerg(\"flood %07d %s\\n\", i, \"" + "." * 80 + "\");\n\t\tcond_resched();\n\t}", (5,)),
    "irqoff": ("local_irq_disable();\n\tfor (;;)\n\t\tcpu_relax();\n\t(void)i;", (5, 6)),
    "oom": ("for (i = 0; ; i++)\n\t\tif (!kmalloc(1 << 20, GFP_KERNEL | __GFP_NOWARN) && i > (1 << 20))\n\t\t\tbreak;", (5, 6)),
}


@pytest.mark.parametrize("bad", sorted(BOUNDED))
def test_a_guest_that_floods_spins_or_fills_its_memory_ends_bounded(kernel, tmp_path, bad):
    """A printk flood, a spin with interrupts off, a kernel eating all memory: each ends
    in its time limit with a verdict, and the console kept is the first and last MiB."""
    body, exits = BOUNDED[bad]
    project = tmp_path / bad
    assert run_cli("new", bad, "-o", str(project)).exit_code == 0
    c = project / f"{bad}_debugfs.c"
    text = c.read_text()
    init = text.index("static int __init")
    brace = text.index("{\n", init) + 2
    c.write_text(f"{text[:init]}static void {bad}_hostile(void)\n{{\n\tint i;\n\n\t{body}\n}}\n\n"
                 f"{text[init:brace]}\t{bad}_hostile();\n{text[brace:]}")
    logs = tmp_path / "logs"
    t0 = time.monotonic()
    r = run_cli("test", str(project), "--kernel", kernel, "--timeout", "30", "--check-timeout", "5", "--keep-logs", str(logs))
    seconds = time.monotonic() - t0
    console = (logs / "console.log").read_bytes()
    print(f"\n{bad}: exit {r.exit_code} in {seconds:.1f} s, console kept {len(console)} bytes")
    assert r.exception is None and r.exit_code in exits, r.output[-3000:]
    assert len(console) <= (2 << 20) + 200
    if bad == "flood":  # over 2 MiB arrives before the limit: the middle is dropped, the end is kept
        assert b"bytes not kept ...]" in console and b"flood 0000000" in console
