"""TestRun -> what people and CI read: a rich table, JUnit XML, JSON.

JUnit: one <testsuite> per kernel; a failing check is a <failure>, a crashed,
timed-out or not-run one an <error>, a SKIP <skipped>; the console log goes
into the suite's <system-out>. JSON: versioned, with the kernel release, the
accelerator, the boot time and every check's duration.

Pure: junit_xml(), json_doc(), junit_classname(). print_run() writes to a rich Console. (KTAP: ktap_out.py.)
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from .. import schemas
from ..errors import EXIT_BUILD
from .decode import Frame
from .ktap_out import run_name
from .leaks import distinct
from .model import Status, TestRun

_STYLE = {Status.PASS: "green", Status.SKIP: "yellow", Status.FAIL: "red", Status.CRASHED: "bold red", Status.TIMEOUT: "bold red",
          Status.NOT_RUN: "dim"}
SUBTESTS_SHOWN = 40  # lines of a check's subtest (e.g. discovered files) in the table
KERNEL_FRAMES_SHOWN = 6  # decoded kernel frames of a report, innermost first (all are in the JSON)


def _clean(text: str) -> str:
    """XML 1.0 forbids most control characters; a kernel log may hold some."""
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in text)


def junit_classname(run: TestRun) -> str:
    """`mydebug on 6_1_0-57-amd64`: Jenkins and GitLab split a classname at its dots into
    packages, and a kernel release is full of them."""
    return run_name(run.module, run.release).replace(".", "_")


def junit_xml(runs: Sequence[TestRun]) -> str:
    suites = ET.Element("testsuites", name="dbgscaffold test")
    for run in runs:
        failures = sum(c.status is Status.FAIL for c in run.checks)
        errors = sum(c.status.error for c in run.checks) + (run.build_failure is not None)
        skipped = sum(c.status is Status.SKIP for c in run.checks)
        suite = ET.SubElement(
            suites, "testsuite", name=f"{run.module} on {run.release}", tests=str(len(run.checks)),
            failures=str(failures), errors=str(errors), skipped=str(skipped), time=f"{run.wall_seconds:.3f}",
        )
        props = ET.SubElement(suite, "properties")
        for key, value in (("kernel", run.release), ("accel", run.accel), ("verdict", run.verdict), ("exit_code", str(run.exit_code))):
            ET.SubElement(props, "property", name=key, value=_clean(value))
        classname = junit_classname(run)
        for c in run.checks:
            case = ET.SubElement(suite, "testcase", classname=classname, name=_clean(f"{c.number} {c.name}"),
                                 time=f"{c.seconds or 0:.3f}")
            detail = _clean("\n".join(c.diagnostics))
            if c.status is Status.FAIL:
                ET.SubElement(case, "failure", message=_clean(c.diagnostics[0] if c.diagnostics else "not ok")).text = detail
            elif c.status.error:
                message = c.crash.title if c.crash else (c.diagnostics[0] if c.diagnostics else c.status)
                el = ET.SubElement(case, "error", message=_clean(message), type=c.status)
                el.text = _clean(c.crash.excerpt if c.crash else detail)
            elif c.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=_clean(c.diagnostics[0] if c.diagnostics else "skipped"))
        if run.build_failure is not None:  # nothing ran: the build (or what stopped it first) is the one test case, in error
            built = run.build_failure.exit_code == EXIT_BUILD
            case = ET.SubElement(suite, "testcase", classname=classname, name="build" if built else "setup", time="0.000")
            ET.SubElement(case, "error", message=_clean(run.build_failure.message),
                          type=Status.BUILD_FAILED if built else Status.NOT_RUN).text = _clean("\n".join(run.build_failure.lines))
        ET.SubElement(suite, "system-out").text = _clean(run.console)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _frame_doc(f: Frame) -> dict:
    return {"function": f.function, "offset": f.offset, "module": f.module, "exact": f.exact, "reliable": f.reliable,
            "file": f.file or None, "line": f.line or None, "source": f.source or None, "ours": f.ours, "entry": f.entry or None}


def json_doc(runs: Sequence[TestRun]) -> dict:
    return {
        "schema": schemas.TEST_REPORT,
        "exit_code": max((r.exit_code for r in runs), default=0),
        "runs": [
            {
                "module": r.module,
                "kernel": r.release,
                "accel": r.accel,
                "accel_reason": r.accel_reason,
                "image": r.image_kind,
                "verdict": r.verdict,
                "exit_code": r.exit_code,
                "ended": r.ended,
                "boot": r.boot,
                "boot_note": r.boot_note,
                "boot_seconds": r.boot_seconds,
                "detectors": list(r.detectors),
                "vm_seconds": r.wall_seconds,
                "build_seconds": r.build_seconds,
                "pack_seconds": r.pack_seconds,
                "taint": None if r.taint is None else {"value": r.taint.value, "letters": r.taint.letters},
                "checks": [
                    {
                        "number": c.number,
                        "name": c.name,
                        "status": c.status,
                        "seconds": c.seconds,
                        "diagnostics": list(c.diagnostics),
                        "subtests": [{"status": st, "name": name} for st, name in c.subtests],
                        "crash": None if c.crash is None else {"kind": c.crash.kind, "title": c.crash.title, "excerpt": c.crash.excerpt},
                    }
                    for c in r.checks
                ],
                "crashes": [{"kind": x.kind, "title": x.title, "check": x.check, "line": x.line,
                             "frames": [_frame_doc(f) for f in (r.frames[i] if i < len(r.frames) else ())]}
                            for i, x in enumerate(r.crashes)],
                "leaks": [{"title": x.title, "check": x.check, "size": x.size, "object": x.address, "comm": x.comm,
                           "backtrace": list(x.backtrace), "frames": [_frame_doc(f) for f in x.frames]} for x in r.leaks],
                "findings": list(r.findings),
                "forged": {"count": r.forged_count, "lines": list(r.forged)},
                "build_failure": None if r.build_failure is None else {
                    "message": r.build_failure.message, "lines": list(r.build_failure.lines), "notes": list(r.build_failure.notes)},
                "qemu_argv": list(r.argv),
            }
            for r in runs
        ],
    }


def json_text(runs: Sequence[TestRun]) -> str:
    return json.dumps(json_doc(runs), indent=2) + "\n"


_RESULT = re.compile(r"^(ok|not ok) (\d+) (.*?)(?: # (\w+).*)?$")
_PLAN = re.compile(r"^1\.\.(\d+)$")


class Progress:
    """Live progress from the streamed KTAP: one line per update, e.g.
    'mydebug on 6.1.0-56-amd64: 7/21 ok  a: write 255, read it back'."""

    def __init__(self, modules: Sequence[str], release: str):
        self.modules = list(modules)
        self.release = release
        self.planned = [0] * len(self.modules)
        self.done = 0

    def update(self, index: int, line: str) -> str | None:
        """The new status text for a results line of module `index`, or None."""
        if line.startswith(" "):
            return None  # a user test's own subtest lines
        m = _PLAN.match(line)
        if m:
            self.planned[index] = int(m.group(1))
            return f"{self.modules[index]} on {self.release}: running {m.group(1)} checks"
        m = _RESULT.match(line)
        if not m:
            return None
        word = m.group(4).lower() if m.group(4) else ("ok" if m.group(1) == "ok" else "FAILED")
        count = f" ({self.done} of {len(self.modules)} modules done)" if len(self.modules) > 1 else ""
        if int(m.group(2)) == self.planned[index]:
            self.done += 1
        return f"{self.modules[index]} on {self.release}: {m.group(2)}/{self.planned[index] or '?'} {word}  {m.group(3)}{count}"


def print_run(run: TestRun, console, verbosity: int = 0) -> None:
    """The summary table of one run, and for each crash its excerpt under the check it hit.
    verbosity -1 (-q): no table, only the checks that failed; 1 (-v): every diagnostic
    and subtest line, not the first few."""
    from rich.markup import escape
    from rich.table import Table

    watching = f"; {', '.join(run.detectors)}" if run.detectors else "; no memory or lock debugging"
    table = Table(title=f"{run.module} on {run.release} ({run.accel}{watching})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("check")
    table.add_column("result")
    table.add_column("s", justify="right")
    diagnostics, subtests = (None, None) if verbosity > 0 else (4, SUBTESTS_SHOWN)
    for c in run.checks:
        if verbosity < 0 and not c.failed:
            continue
        style = _STYLE.get(c.status, "red")
        note = ""
        if (c.failed or c.status is Status.SKIP) and c.diagnostics:
            note = "\n" + "\n".join(escape(d) for d in c.diagnostics[:diagnostics])
        if c.subtests:  # name what a subtest covered: each discovered file, each result of a tests/*.sh
            shown = [f"  [{_STYLE.get(st, 'red')}]{'ok' if st is Status.PASS else st}[/] {escape(name)}" for st, name in c.subtests[:subtests]]
            more = len(c.subtests) - len(shown)
            note += "\n" + "\n".join(shown) + (f"\n  ... {more} more" if more > 0 else "")
        if c.crash is not None:
            note += f"\n[red]{escape(c.crash.title)}[/red]"
        table.add_row(str(c.number), escape(c.name) + note, f"[{style}]{c.status}[/{style}]", "" if c.seconds is None else f"{c.seconds:.2f}")
    if table.rows:
        console.print(table)
    for i, rep in enumerate(run.crashes):
        where = f"check {rep.check}" if rep.check else "outside any check"
        console.print(f"[bold red]{escape(rep.title)}[/bold red] ({where}):")
        console.print(escape(rep.excerpt), highlight=False)
        frames = run.frames[i] if i < len(run.frames) else ()
        decoded = [f for f in frames if f.ours]
        if decoded:
            console.print("[bold]in your code:[/bold]")
            for f in decoded:
                console.print(f"  {escape(str(f))}" + ("" if f.reliable else "  (? an unreliable frame)"), highlight=False)
        kernel = [f for f in frames if not f.module and f.file and f.reliable]  # a kernel with DWARF (a debug kernel)
        if kernel:
            console.print("[bold]in the kernel:[/bold] " + escape(" < ".join(f"{f.function} {f.file}:{f.line}" for f in kernel[:KERNEL_FRAMES_SHOWN])),
                          highlight=False)
    if run.forged_count:
        console.print(f"[bold red]{run.forged_count} line(s) on the results port without this run's token were ignored[/bold red] "
                      f"(the module or a program wrote them, not the checks), e.g. {escape(run.forged[0]) if run.forged else ''}",
                      highlight=False)
    for leak, n in distinct(run.leaks):
        objects = f"{leak.size} bytes (object {leak.address}, allocated by {leak.comm}" + (f"; {n} objects like it)" if n > 1 else ")")
        console.print(f"[bold red]{escape(leak.title)}[/bold red] (check {leak.check}): {escape(objects)}", highlight=False)
        if leak.site is not None:
            console.print(f"  allocated at {escape(str(leak.site))}", highlight=False)
    timing = f"build {run.build_seconds:.1f} s, pack {run.pack_seconds:.2f} s, checks {run.wall_seconds:.1f} s"
    if run.boot_seconds:
        timing += f", {'restore' if run.boot == 'snapshot' else 'boot'} {run.boot_seconds:.2f} s"
    taint = f", taint {run.taint.value} {run.taint.letters}" if run.taint is not None else ""
    if run.boot == "fresh" or run.image_kind == "bzimage":  # how it started, when that is news
        console.print(f"[dim]{escape(run.boot_note)}[/dim]")
    style = "green" if run.exit_code == 0 else "bold red"
    console.print(f"[{style}]{escape(run.verdict)}[/{style}]  ({timing}{taint}; exit {run.exit_code})", highlight=False)
