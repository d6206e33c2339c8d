"""The verdict of one module's run: its KTAP, console slice and taint -> a TestRun. Pure.

Exit codes, worst first: 5 a timeout or hang (unless a crash explains it), 6 a
crash (an oops or other kernel report, a panic, a D/W/L/B... taint), 1 a
failed check, 0 pass. A kernel report is charged to the check whose kmsg
markers surround it.
"""

from __future__ import annotations

import re

from ..errors import EXIT_CHECKS_FAILED, EXIT_CRASH, EXIT_OK, EXIT_TIMEOUT
from ..vm import crash, ktap
from ..vm.qemu import RunResult
from .model import CheckResult, Status, TestRun

_UPTIME = re.compile(r"^uptime: ([\d.]+) ([\d.]+)$")
_TAINT_CHANGE = re.compile(r"^taint: (\d+) -> (\d+)$")
_TAINT = re.compile(r"^taint: (\d+)$")
_LOADING_TAINT = 1 << 12 | 1 << 13  # O (out-of-tree) and E (unsigned): any module of ours sets them


def _subtests(t: ktap.KtapTest) -> tuple[tuple[Status, str], ...]:
    """(status, name) of each result of a check's KTAP subtest (a tests/*.sh, the discovered files)."""
    return tuple((Status(s.status), s.name) for s in t.subtests.tests) if t.subtests is not None else ()


def _per_check(t: ktap.KtapTest) -> tuple[float | None, int | None, int | None, tuple[str, ...]]:
    seconds = before = after = None
    shown = []
    diagnostics = list(t.diagnostics)
    if t.subtests is not None:  # a user's tests/*.sh: say which of its results failed
        diagnostics += list(t.subtests.diagnostics)
        for sub in t.subtests.tests:
            if sub.failed:
                diagnostics += [*sub.diagnostics, f"not ok {sub.number} {sub.name}"]
    for d in diagnostics:
        m = _UPTIME.match(d)
        if m:
            seconds = max(0.0, float(m.group(2)) - float(m.group(1)))
            continue
        m = _TAINT_CHANGE.match(d)
        if m:
            before, after = int(m.group(1)), int(m.group(2))
            if not (after & ~before) & ~_LOADING_TAINT:
                continue  # the first out-of-tree module of a guest: only where it ran first, never news
        shown.append(d)
    return seconds, before, after, tuple(shown)


def judge(module: str, names: list[str], r: RunResult, release: str = "", accel: str = "", accel_reason: str = "",
          image_kind: str = "", build_seconds: float = 0.0, pack_seconds: float = 0.0, boot: str = "",
          boot_note: str = "") -> TestRun:
    """The verdict of one run: 5 timeout/hang, 6 crash or failing taint, 1 failed checks, 0 pass."""
    doc = ktap.parse(r.results)
    reports = tuple(crash.classify(r.console))
    by_check: dict[int, crash.CrashReport] = {}
    for report in reports:
        if report.check and report.check.isdigit():
            by_check.setdefault(int(report.check), report)
    results = []
    final_taint = None
    for d in doc.diagnostics:
        m = _TAINT.match(d)
        if m:
            final_taint = int(m.group(1))
    hung = None  # the first check without a result in a run that timed out
    stopped = None  # the check after which the guest bailed out (an oops)
    m = re.search(r"^Bail out! (?:the kernel oopsed during check|check) (\d+)", r.results, re.M)
    if m:
        stopped = int(m.group(1))
    numbers = [t.number for t in doc.tests]
    twice = {n for n in numbers if numbers.count(n) > 1}  # ours write one result a check: the rest is forged
    for n, name in enumerate(names, 1):
        if n in twice:
            results.append(CheckResult(n, name, Status.FAIL, ("two results arrived for this check (something besides the "
                                                              "checks wrote to the results port): neither is trusted",)))
            continue
        t = doc.test(n)
        if t is None or t.ok is None:  # planned, but its result never arrived
            if stopped is not None and n > stopped:
                results.append(CheckResult(n, name, Status.NOT_RUN, (f"the guest stopped after check {stopped}",)))
                continue
            if r.timed_out and not by_check.get(n):
                if hung is None:
                    hung = n
                    results.append(CheckResult(n, name, Status.TIMEOUT, ("no result before the run's timeout: this check hung",)))
                else:
                    results.append(CheckResult(n, name, Status.NOT_RUN, (f"the guest hung in check {hung}",)))
                continue
            results.append(CheckResult(n, name, Status.CRASHED, ("no result arrived",), crash=by_check.get(n)))
            continue
        seconds, before, after, diags = _per_check(t)
        status = Status(t.status)
        rep: crash.CrashReport | None = by_check.get(n)
        if after is not None and crash.decode_taint(after).failed and not crash.decode_taint(before or 0).failed and status is Status.PASS:
            status = Status.FAIL
            diags += (f"the kernel was tainted {crash.decode_taint(after).letters} during this check",)
        if rep is not None and rep.fatal and status in (Status.PASS, Status.FAIL):
            status = Status.CRASHED
        results.append(CheckResult(n, name, status, diags, seconds, rep, before, after, _subtests(t)))
        if after is not None:
            final_taint = after
    taint = crash.decode_taint(final_taint) if final_taint is not None else None
    failed = [c for c in results if c.failed]
    # A crash explains a later hang (an oops leaves locks held): it comes first.
    crashed = bool(reports) or (taint is not None and taint.failed) or r.ended == "panic"
    stuck = next((c for c in results if c.status is Status.TIMEOUT), None)
    if r.timed_out and not crashed:
        code = EXIT_TIMEOUT
        verdict = f"timeout: no result within the run's limit ({r.wall_seconds:.0f} s)" + (f"; stuck in check {stuck.number} '{stuck.name}'" if stuck else "")
    elif stuck is not None and not crashed:  # the guest's own per-check limit
        code = EXIT_TIMEOUT
        verdict = f"timeout: check {stuck.number} '{stuck.name}' exceeded its time limit"
    elif crashed or any(c.status is Status.CRASHED for c in results):
        code = EXIT_CRASH
        if reports:
            first = reports[0]
            known = first.check is not None and first.check.isdigit() and int(first.check) <= len(names)
            where = f" in check {first.check} '{names[int(first.check) - 1]}'" if known and first.check else ""
            verdict = f"crash: {first.title}{where}"
        elif taint is not None and taint.failed:
            verdict = f"crash: the kernel is tainted {taint.letters} ({', '.join(f.meaning for f in taint.failures)})"
        else:
            verdict = f"crash: the guest ended ({r.ended}) before every result arrived"
    elif failed:
        code = EXIT_CHECKS_FAILED
        verdict = f"{len(failed)} of {len(results)} checks failed"
    else:
        code = EXIT_OK
        verdict = f"pass: {len(results)} checks"
    return TestRun(
        module=module, release=release, accel=accel, accel_reason=accel_reason, image_kind=image_kind,
        checks=tuple(results), crashes=reports, taint=taint, ended=r.ended, timed_out=r.timed_out,
        boot_seconds=r.boot_seconds, wall_seconds=r.wall_seconds, build_seconds=build_seconds,
        pack_seconds=pack_seconds, console=r.console, results=r.results, exit_code=code, verdict=verdict,
        argv=r.argv, boot=boot, boot_note=boot_note, forged=r.forged, forged_count=r.forged_count,
    )
