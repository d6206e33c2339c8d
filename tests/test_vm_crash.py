"""vm.crash: classification of real and real-format kernel logs, taint, check attribution."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dbgscaffold.vm import crash
from dbgscaffold.vm.crash import classify, decode_taint

DATA = Path(__file__).parent / "data" / "vm_crash"
SERIES = ("6.1", "6.12")


def sample(name: str) -> str:
    return (DATA / f"{name}.log").read_text()


# ------------------------------------------------------------- real logs from both kernels


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize(
    "what,kind,title,fatal",
    [
        ("warn", "warning", "WARNING in crashmod_init [crashmod]", False),
        ("null", "null-deref", "BUG: kernel NULL pointer dereference in crashmod_init [crashmod]", True),
        ("div", "divide-error", "divide error in do_div0 [crashmod]", True),
        ("panic", "panic", "Kernel panic - not syncing: crashmod: deliberate panic", True),
        ("hung", "hung-task", "INFO: task hung (insmod) in crashmod_init [crashmod] (reported 2 times)", False),
        ("spin", "soft-lockup", "BUG: soft lockup in crashmod_init [crashmod]", False),
    ],
)
def test_real_reports(series, what, kind, title, fatal):
    reports = classify(sample(f"{series}-{what}"))
    assert reports, "nothing found"
    first = reports[0]
    assert (first.kind, first.title, first.fatal) == (kind, title, fatal)
    assert first.check == "1"
    assert first.excerpt.splitlines()[0].endswith(first.header)
    # A soft lockup reported again is a separate report of the same kind; a hung task is merged.
    assert {r.kind for r in reports} == {kind}


@pytest.mark.parametrize("series", SERIES)
def test_kernel_bug_is_one_report_with_its_invalid_opcode(series):
    (r,) = classify(sample(f"{series}-bug"))
    assert r.kind == "kernel-bug" and r.fatal and r.title.startswith("kernel BUG at /tmp/crashmod-") and r.title.endswith("crashmod.c:20 in crashmod_init [crashmod]")
    assert "invalid opcode: 0000" in r.excerpt  # absorbed, not a second report


@pytest.mark.parametrize("series", SERIES)
def test_excerpt_runs_to_the_end_trace_marker(series):
    (r,) = classify(sample(f"{series}-warn"))
    lines = r.excerpt.splitlines()
    assert "WARNING: CPU: 0 PID:" in lines[0] and "---[ end trace" in lines[-1]
    assert "Call Trace:" in r.excerpt and "insmod exit" not in r.excerpt
    (oops,) = classify(sample(f"{series}-null"))
    assert oops.excerpt.splitlines()[-1].endswith("]---") and "Oops:" in oops.excerpt


@pytest.mark.parametrize("series", SERIES)
def test_stack_only_reports_end_with_their_stack(series):
    first = classify(sample(f"{series}-hung"))[0]
    assert first.excerpt.splitlines()[-1].strip().endswith("</TASK>")
    assert "blocked for more than 4 seconds" not in first.excerpt


def test_a_clean_boot_has_no_reports():
    clean = "\n".join(line for line in sample("6.1-warn").splitlines()[:6])
    assert "crashmod: doing warn" in clean and classify(clean) == []


# ------------------------------------------------------------- real-format samples, by hand

GPF = """\
[   35.123456] Oops: general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI
[   35.123999] CPU: 1 UID: 0 PID: 4242 Comm: cat Tainted: G           OE      6.12.117+deb12-amd64 #1
[   35.124100] RIP: 0010:mydbg_read+0x2a/0x90 [mydbg]
[   35.124200] Call Trace:
[   35.124210]  <TASK>
[   35.124220]  full_proxy_read+0x5c/0x90
[   35.124230]  vfs_read+0xb0/0x350
[   35.124240]  </TASK>
[   35.124300] ---[ end trace 0000000000000000 ]---
"""

RCU = """\
[   60.000001] rcu: INFO: rcu_preempt self-detected stall on CPU
[   60.000002] rcu: \t0-....: (5250 ticks this GP) idle=1234/1/0x4000000000000000 softirq=100/100 fqs=2400
[   60.000003] CPU: 0 PID: 77 Comm: insmod Tainted: G           OE      6.1.0-56-amd64 #1
[   60.000004] RIP: 0010:spin_forever+0x10/0x20 [mydbg]
[   60.000005] Call Trace:
[   60.000006]  <TASK>
[   60.000007]  mydbg_init+0x20/0x1000 [mydbg]
[   60.000008]  do_one_initcall+0x56/0x220
[   60.000009]  </TASK>
[   60.000010] some later line
"""

KASAN = """\
[   12.000000] ==================================================================
[   12.000001] BUG: KASAN: slab-out-of-bounds in mydbg_write+0x6e/0xc0 [mydbg]
[   12.000002] Write of size 1 at addr ffff888003d0a468 by task sh/91
[   12.000003] Call Trace:
[   12.000004]  <TASK>
[   12.000005]  dump_stack_lvl+0x44/0x5c
[   12.000006]  mydbg_write+0x6e/0xc0 [mydbg]
[   12.000007]  </TASK>
[   12.000008] The buggy address belongs to the object at ffff888003d0a460
[   12.000009] ==================================================================
[   12.000010] next
"""

UBSAN = """\
[    5.000000] ================================================================================
[    5.000001] UBSAN: array-index-out-of-bounds in /tmp/mydbg/mydbg.c:42:9
[    5.000002] index 8 is out of range for type 'u32 [8]'
[    5.000003] CPU: 0 PID: 90 Comm: cat Not tainted 6.12.117 #1
[    5.000004] Call Trace:
[    5.000005]  <TASK>
[    5.000006]  __ubsan_handle_out_of_bounds+0xc8/0x100
[    5.000007]  mydbg_show+0x51/0x60 [mydbg]
[    5.000008]  </TASK>
[    5.000009] ================================================================================
"""

ARM64 = """\
[    3.100000] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000
[    3.100001] Mem abort info:
[    3.100002] Internal error: Oops: 0000000096000045 [#1] PREEMPT SMP
[    3.100003] pc : mydbg_init+0x1c/0x1000 [mydbg]
[    3.100004] lr : do_one_initcall+0x60/0x2b0
[    3.100005] ---[ end trace 0000000000000000 ]---
"""

SLEEP = """\
[    7.000000] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580
[    7.000001] in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 88, name: cat
[    7.000002] Call Trace:
[    7.000003]  <TASK>
[    7.000004]  dump_stack_lvl+0x44/0x5c
[    7.000005]  __might_resched+0x12f/0x160
[    7.000006]  mutex_lock+0x1a/0x40
[    7.000007]  mydbg_show+0x2a/0x60 [mydbg]
[    7.000008]  </TASK>
[    7.000009] unrelated
"""

HARD = """\
[   20.000000] watchdog: Watchdog detected hard LOCKUP on cpu 1
[   20.000001] RIP: 0010:mydbg_spin+0x5/0x10 [mydbg]
[   20.000002]  </TASK>
"""

BAD_PAGE = """\
[    9.000000] BUG: Bad page state in process cat  pfn:05a3c
[    9.000001] page:00000000a3f1 refcount:-1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x5a3c
[    9.000002] Call Trace:
[    9.000003]  <TASK>
[    9.000004]  bad_page+0x5c/0x100
[    9.000005]  mydbg_release+0x20/0x40 [mydbg]
[    9.000006]  </TASK>
"""


@pytest.mark.parametrize(
    "log,kind,title,fatal",
    [
        (GPF, "gpf", "general protection fault in mydbg_read [mydbg]", True),
        (RCU, "rcu-stall", "INFO: rcu detected stall in spin_forever [mydbg]", False),
        (KASAN, "kasan", "KASAN: slab-out-of-bounds in mydbg_write [mydbg]", True),
        (UBSAN, "ubsan", "UBSAN: array-index-out-of-bounds in mydbg_show [mydbg]", False),
        (ARM64, "paging", "Unable to handle kernel NULL pointer dereference in mydbg_init [mydbg]", True),
        (SLEEP, "sleep-in-atomic", "BUG: sleeping function called from invalid context in mydbg_show [mydbg]", False),
        (HARD, "hard-lockup", "hard lockup in mydbg_spin [mydbg]", True),
        (BAD_PAGE, "bad-page", "BUG: Bad page state in mydbg_release [mydbg]", False),
    ],
)
def test_real_format_samples(log, kind, title, fatal):
    (r,) = classify(log)
    assert (r.kind, r.title, r.fatal) == (kind, title, fatal)
    assert r.line == next(i for i, x in enumerate(log.splitlines(), 1) if x.endswith(r.header))
    assert "next" not in r.excerpt and "unrelated" not in r.excerpt and "some later line" not in r.excerpt


def test_oops_then_panic_are_two_reports():
    log = sample("6.12-null").replace(
        "note: insmod[121] exited with irqs disabled",
        "Kernel panic - not syncing: Fatal exception\nKernel Offset: disabled",
    )
    kinds = [r.kind for r in classify(log)]
    assert kinds == ["null-deref", "panic"]


def test_bounded_excerpt():
    log = "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2\n" + "\n".join(f" frame_{i}+0x1/0x2" for i in range(500))
    (r,) = classify(log, max_lines=20)
    assert len(r.excerpt.splitlines()) == 20


# ------------------------------------------------------------- check attribution


def test_attribution_by_markers():
    log = textwrap.dedent("""\
        [ 1.0] dbgscaffold: begin check 1
        [ 1.1] all fine
        [ 1.2] dbgscaffold: end check 1
        [ 1.3] dbgscaffold: begin check load:mydbg
        [ 1.4] WARNING: CPU: 0 PID: 5 at x.c:1 mydbg_init+0x1/0x2 [mydbg]
        [ 1.5] ---[ end trace 0000000000000000 ]---
        [ 1.6] dbgscaffold: end check load:mydbg
        [ 1.7] WARNING: CPU: 0 PID: 5 at x.c:9 other+0x1/0x2
        [ 1.8] ---[ end trace 0000000000000000 ]---
        [ 1.9] dbgscaffold: begin check 3
        [ 2.0] BUG: kernel NULL pointer dereference, address: 0000000000000008
        [ 2.1] RIP: 0010:mydbg_read+0x1/0x2 [mydbg]
    """)
    reports = classify(log)
    assert [(r.kind, r.check) for r in reports] == [("warning", "load:mydbg"), ("warning", None), ("null-deref", "3")]
    spans = crash.check_spans(log)
    assert [(s.id, s.end_line is None) for s in spans] == [("1", False), ("load:mydbg", False), ("3", True)]


def test_a_report_stops_at_the_next_check_marker():
    log = "dbgscaffold: begin check 1\nBUG: soft lockup - CPU#0 stuck for 3s! [x:1]\nmore\ndbgscaffold: end check 1\nafter\n"
    (r,) = classify(log)
    assert r.excerpt.splitlines()[-1] == "more" and r.check == "1"


def test_marker_format_is_what_attribution_reads():
    assert crash.CHECK_BEGIN.format(id=7) == "dbgscaffold: begin check 7"
    assert crash.CHECK_END.format(id=7) == "dbgscaffold: end check 7"


# ------------------------------------------------------------- taint


def test_taint_decoding():
    t = decode_taint("12288\n")  # what loading our module does
    assert t.letters == "OE" and not t.failed and not t.unexpected
    t = decode_taint(12800)  # + WARNING
    assert t.letters == "WOE" and [f.letter for f in t.failures] == ["W"]
    t = decode_taint(28672)  # + soft lockup
    assert [f.letter for f in t.failures] == ["L"] and t.failed
    t = decode_taint(128 | 32)
    assert [f.letter for f in t.failures] == ["B", "D"]
    t = decode_taint(1)
    assert not t.failed and [f.letter for f in t.unexpected] == ["P"]
    t = decode_taint(0)
    assert t.flags == () and t.letters == "" and not t.failed
    t = decode_taint(1 << 30 | 512)
    assert t.unknown_bits == (30,) and t.letters == "W"
    assert decode_taint("0x200").letters == "W"
    with pytest.raises(ValueError):
        decode_taint(-1)


@pytest.mark.parametrize("series", SERIES)
def test_taints_match_the_samples(series):
    """The samples' guests printed /proc/sys/kernel/tainted: W for warn, D for an oops."""
    assert decode_taint(12800).letters == "WOE"
    assert decode_taint(12416).letters == "DOE"
    # The kernel's own line agrees: 'Tainted: G           OE' before the module's WARN.
    assert "Tainted: G           OE" in sample(f"{series}-warn")


def test_kfence_title():
    (r,) = classify("BUG: KFENCE: use-after-free read in mydbg_read+0x1/0x2 [mydbg]\n")
    assert r.kind == "kfence" and r.title == "KFENCE: use-after-free read in mydbg_read [mydbg]"


# ------------------------------------------------------------- repeated hung-task reports


def _hung(log: str, pid: int, seconds: int, culprit: str, t: float) -> str:
    """One khungtaskd report in 6.12's format."""
    return log + textwrap.dedent(f"""\
        [{t:12.6f}] INFO: task insmod:{pid} blocked for more than {seconds} seconds.
        [{t:12.6f}]       Tainted: G           OE      6.12.117+deb12-amd64 #1
        [{t:12.6f}] "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
        [{t:12.6f}] task:insmod          state:D stack:0     pid:{pid}   tgid:{pid}   ppid:95     flags:0x00004002
        [{t:12.6f}] Call Trace:
        [{t:12.6f}]  <TASK>
        [{t:12.6f}]  __schedule+0x3f0/0xb40
        [{t:12.6f}]  schedule+0x27/0xf0
        [{t:12.6f}]  {culprit}+0x1d/0x40 [mydbg]
        [{t:12.6f}]  do_one_initcall+0x56/0x220
        [{t:12.6f}]  </TASK>
    """)


@pytest.mark.parametrize("series", SERIES)
def test_a_task_reported_again_is_one_report_with_a_count(series):
    (r,) = classify(sample(f"{series}-hung"))
    assert r.count == 2 and r.title.endswith(" (reported 2 times)") and r.line == 9 and r.check == "1"
    assert "blocked for more than 2 seconds" in r.excerpt  # the first report's text


def test_hung_reports_merge_per_task_and_culprit():
    log = "dbgscaffold: begin check 4\n"
    for n, t in enumerate((2.0, 4.0, 6.0)):
        log = _hung(log, 121, 2 * (n + 1), "mydbg_init", t)
    log = _hung(log, 130, 2, "mydbg_init", 7.0)  # another task: its own report
    log = _hung(log, 121, 8, "mydbg_other", 8.0)  # the same task, stuck elsewhere now
    reports = classify(log)
    assert [(r.title, r.count, r.check) for r in reports] == [
        ("INFO: task hung (insmod) in mydbg_init [mydbg] (reported 3 times)", 3, "4"),
        ("INFO: task hung (insmod) in mydbg_init [mydbg]", 1, "4"),
        ("INFO: task hung (insmod) in mydbg_other [mydbg]", 1, "4"),
    ]
    assert reports[0].line == 2 and "2 seconds" in reports[0].excerpt and "4 seconds" not in reports[0].excerpt


def test_other_repeated_reports_are_not_merged():
    log = sample("6.12-spin")
    reports = classify(log)
    assert len(reports) == 2 and all(r.count == 1 and "reported" not in r.title for r in reports)


COPY_OVERFLOW = """\
[    5.718932] Buffer overflow detected (64 < 65)!
[    5.719815] WARNING: CPU: 0 PID: 383 at mm/maccess.c:228 __copy_overflow+0x16/0x30
[    5.720001] Modules linked in: overrun(OE)
[    5.725920] Call Trace:
[    5.726000]  <TASK>
[    5.727475]  overrun_cmd_write+0xdd/0xf4 [overrun]
[    5.727600]  full_proxy_write+0x5c/0x90
[    5.727700]  vfs_write+0xcb/0x3f0
[    5.727800]  </TASK>
[    5.789941] ---[ end trace 0000000000000000 ]---
"""


def test_a_warning_in_a_core_helper_names_the_module_that_called_it():
    """copy_from_user() past a fixed buffer WARNs in __copy_overflow (6.1, real
    format): the module's write handler is the culprit; without a module frame the
    helper stays."""
    (r,) = classify(COPY_OVERFLOW)
    assert (r.kind, r.title, r.function, r.module) == ("warning", "WARNING in overrun_cmd_write [overrun]", "overrun_cmd_write", "overrun")
    (core,) = classify(COPY_OVERFLOW.replace(" [overrun]", ""))
    assert core.title == "WARNING in __copy_overflow" and core.module == ""


def test_slub_debug_reports_a_use_after_free_on_a_stock_kernel():
    """6.12 booted with slub_debug=FZPU (dbgscaffold test --sanitize), a module that writes to
    kfree'd memory in its init: SLUB finds the poison overwritten when the slab is next checked."""
    log = (DATA / "6.12-slub-uaf.log").read_text()
    reports = crash.classify(log)
    first = reports[0]
    assert first.kind == "slub" and first.title.startswith("SLUB: Object corrupt (kmalloc-64)"), first.title
    assert "Allocated in" in first.excerpt and "Freed in" in first.excerpt and "object_err" not in first.title
    assert first.check == "2"  # found during the next check, not the one that wrote
    assert any(r.title.startswith("SLUB: Slab disabled since SLUB metadata consistency check failed") for r in reports)


@pytest.mark.parametrize("n, kind, title", [
    (1, "sleep-in-atomic", "BUG: sleeping function called from invalid context in locks_init [locks]"),
    (2, "lockdep", "possible deadlock in locks_init [locks]"),
    (3, "lockdep", "lock held when returning to user space"),
])
def test_lockdep_and_atomic_sleep_reports_on_the_debug_kernel(n, kind, title):
    reports = classify((DATA / f"debug-6.1-locks-{n}.log").read_text())
    assert reports and (reports[0].kind, reports[0].title) == (kind, title), [(r.kind, r.title) for r in reports]
    assert reports[0].check == "1"  # insmod's check: the module's init did it


@pytest.mark.parametrize("name, kind, title", [
    ("refcount", "refcount", "refcount bug (underflow; use-after-free) in rcbug_init [rcbug]"),
    ("list-add", "list-corruption", "BUG: corrupted list (list_add double add) in rcbug_init [rcbug]"),
    ("list-del", "list-corruption", "BUG: corrupted list (list_del corruption) in list_del.constprop.0 [rcbug]"),
    ("ubsan", "ubsan", "UBSAN: array-index-out-of-bounds in rcbug_init [rcbug]"),
])
def test_refcount_and_list_corruption_on_the_debug_kernel(name, kind, title):
    """Real logs of the debug kernel running vm_crash/rcbug.c.txt with bug=1, 2, 3 (and 5, an
    array index UBSAN catches): each WARN is named by its message (the WARNING line inside the
    report), charged to insmod's check."""
    reports = classify((DATA / f"debug-6.1-{name}.log").read_text())
    assert reports and (reports[0].kind, reports[0].title) == (kind, title), [(r.kind, r.title) for r in reports]
    assert reports[0].check == "1"
    assert "index 8 is out of range" in reports[0].excerpt if kind == "ubsan" else "WARNING: CPU: 0 PID: 45 at lib/" in reports[0].excerpt


def test_a_dead_guest_is_described_by_the_oops_that_killed_it_and_the_panic_after():
    from dbgscaffold.vm.crash import what_killed

    oops = ("[ 5.0] WARNING: CPU: 0 PID: 1 at kernel/foo.c:1 foo+0x1/0x2\n[ 5.0] ---[ end trace 0000000000000000 ]---\n"
            "[ 5.1] BUG: kernel NULL pointer dereference, address: 0000000000000000\n[ 5.1] Oops: 0002 [#1] PREEMPT SMP NOPTI\n"
            "[ 5.1] RIP: 0010:timer_fn+0x1/0x20\n")
    panic = "[ 5.2] Kernel panic - not syncing: Fatal exception in interrupt\n"
    assert what_killed(oops + panic) == ("BUG: kernel NULL pointer dereference in timer_fn"
                                         " → Kernel panic - not syncing: Fatal exception in interrupt")
    assert what_killed(oops) == "BUG: kernel NULL pointer dereference in timer_fn"
    assert what_killed("[ 5.1] sysrq: Trigger a crash\n[ 5.1] Kernel panic - not syncing: sysrq triggered crash\n") == \
        "Kernel panic - not syncing: sysrq triggered crash"
    assert what_killed("[ 5.0] reboot: Power down\n") == ""
