"""Print a CheckReport: rich tables on a terminal (NO_COLOR honoured by rich),
plain text of the same layout elsewhere; or the versioned JSON document."""

from __future__ import annotations

import json
import sys

from .check import CheckReport
from .flat import FAIL, NOT_IN_KERNEL, OK, actual_text
from .profiles import ClassicTracer

STATUS_STYLE = {OK: "green", FAIL: "red", NOT_IN_KERNEL: "yellow"}


def _console(file=None):
    from rich.console import Console

    file = file or sys.stdout
    terminal = file.isatty()
    # Off a terminal nothing should wrap: logs and pipes read better long.
    return Console(file=file, width=None if terminal else 160, soft_wrap=not terminal, highlight=False)


def print_report(report: CheckReport, file=None) -> None:
    from rich import box
    from rich.table import Table

    console = _console(file)
    cfg = report.config
    kernel = f"Linux {cfg.version_text}" if cfg.version else "kernel version unknown"
    console.print(f"Config: {report.config_path} ({kernel}{', ' + cfg.arch if cfg.arch else ''})"
                  + (" [the running kernel]" if report.running_kernel else ""))
    if report.analysis == "kconfig":
        console.print(f"Analysis: Kconfig tree {report.tree_source}")
    else:
        console.print(f"Analysis: flat (values only){': ' + report.tree_note if report.tree_note else ''}")
    for warning in cfg.warnings:
        console.print(f"[yellow]warning:[/] {warning}", markup=True)
    for profile in report.profiles:
        rows = [r for r in report.results if r.profile == profile.name]
        if report.order:  # menuconfig's order when a tree was loaded
            rows.sort(key=lambda r: report.order.get(r.symbol, len(report.order)))
        table = Table(title=f"{profile.name}: {profile.title}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("option", "level", "wanted", "actual", "status"):
            table.add_column(column)
        for r in rows:
            style = STATUS_STYLE[r.status]
            table.add_row(f"CONFIG_{r.symbol}", r.option.level, r.option.wanted_text, actual_text(r.actual), f"[{style}]{r.status}[/]")
        console.print()
        console.print(table)
        for r in rows:
            if r.status == OK and not r.reason:
                continue
            if r.status == OK:
                console.print(f"  note CONFIG_{r.symbol}: {r.reason}", markup=False)
                continue
            fails_run = r.status == FAIL and (report.strict or r.option.level == "required")
            mark = "FAIL" if fails_run else ("warn" if r.status == FAIL else "note")
            console.print(f"  {mark} CONFIG_{r.symbol} ({r.option.level}): {r.reason}", markup=False)
            console.print(f"       needed for: {r.option.why}", markup=False)
            for line in explanation_lines(r.explanation):
                console.print(f"       {line}", markup=False)
            if r.option.note and r.status == FAIL:
                console.print(f"       note: {r.option.note}", markup=False)
            if r.fix:
                console.print("       fix: " + " ".join(_assignment(s, v) for s, v in r.fix), markup=False)
    if report.fix is not None:
        _print_fix(console, report)
    if report.runtime:
        console.print()
        console.print("Runtime readiness of the running kernel:")
        for check in report.runtime:
            colour = {"ok": "green", "problem": "red", "warning": "yellow"}.get(check.status, "white")
            console.print(f"  [{colour}]{check.status:8}[/] {check.title}: {check.found}")
            if check.status != "ok" and check.fix:
                console.print(f"           fix: {check.fix}", markup=False)
    summary = report.to_dict()["summary"]
    console.print()
    console.print(
        f"Result: {len(summary['required_failed'])} required and {len(summary['recommended_failed'])} recommended "
        f"option(s) failing{' (--strict: recommended count)' if report.strict else ''}"
        + ("; after the fix" if report.written is not None else "")
        + f"; exit {report.exit_code}"
    )


def explanation_lines(ex, depth: int = 0) -> list[str]:
    """A tree explanation as indented lines: what holds, where, and down the chain."""
    if ex is None:
        return []
    pad = "  " * depth
    lines = []
    if depth:
        lines.append(f"{pad}-> CONFIG_{ex.symbol} ({ex.current or 'undefined'}): {ex.message}")
    else:
        lines.append(f"kconfig: {ex.kind}" + (f" ({', '.join(ex.locations)})" if ex.locations else ""))
    if ex.depends and ex.unmet:
        lines.append(f"{pad}   depends on {ex.depends}")
    if ex.selected_by:
        lines.append(f"{pad}   selected by {', '.join(ex.selected_by[:4])}" + (" ..." if len(ex.selected_by) > 4 else ""))
    if ex.choice:
        lines.append(f"{pad}   choice: {ex.choice}")
    for note in ex.notes:
        lines.append(f"{pad}   {note}")
    for cause in ex.causes[:3]:
        lines.extend(explanation_lines(cause, depth + 1))
    return lines


def _print_fix(console, report: CheckReport) -> None:
    fix = report.fix
    assert fix is not None  # the caller prints a fix only when one was asked for
    console.print()
    if not fix.applied and not fix.plan.wanted:
        console.print("Fix: nothing to fix.")
        return
    console.print("Fix (verified on the Kconfig tree; only lines that take effect):")
    for line in fix.fragment.splitlines() or ["(no assignment takes effect)"]:
        console.print(f"  {line}", markup=False)
    console.print("As scripts/config commands:")
    for line in fix.scripts_config:
        console.print(f"  {line}", markup=False)
    for symbol, value, why in fix.dropped:
        console.print(f"  dropped {_assignment(symbol, value)}: {why}", markup=False)
    for conflict in fix.plan.conflicts:
        console.print(f"  conflict: {conflict}", markup=False)
    for outcome in fix.outcomes:
        if not outcome.ok:
            console.print(f"  CONFIG_{outcome.symbol} stays {outcome.after or 'undefined'}: {outcome.reason}", markup=False)
    if report.written is not None:
        w = report.written
        where = f"{w.path}" + (f" (backup: {w.backup})" if w.backup else "")
        if w.ok:
            console.print(f"Wrote {where}; re-checked: every requested value took effect.")
        else:
            console.print(f"Wrote {where}; re-checked: did NOT take effect: {', '.join('CONFIG_' + s for s in w.not_taken)}")
            for o in w.outcomes:
                if not o.ok:
                    console.print(f"  CONFIG_{o.symbol}: {o.reason}", markup=False)


def _assignment(symbol: str, value: str) -> str:
    return f"# CONFIG_{symbol} is not set" if value == "n" else f"CONFIG_{symbol}={value}"


def print_json(report: CheckReport, file=None) -> None:
    json.dump(report.to_dict(), file or sys.stdout, indent=2, sort_keys=False)
    (file or sys.stdout).write("\n")


def print_tracer_map(tracers: list[ClassicTracer], report: CheckReport | None = None, file=None) -> None:
    from rich import box
    from rich.table import Table

    console = _console(file)
    title = "The classic ftrace tracers today"
    if report is not None:
        title += f" (availability in {report.config_path})"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("classic tracer", "status", "config", *(["here"] if report else []), "today"):
        table.add_column(column)
    for t in tracers:
        config = "+".join(f"CONFIG_{s}" for s in (t.config, t.also) if s) or "-"
        row = [t.name, t.status, config]
        if report is not None:
            values = [report.config.get(s) for s in (t.config, t.also) if s]
            if not values:
                here = "gone"
            else:
                here = "yes" if all(v in ("y", "m") for v in values) else "no"
            row.append(here)
        row.append(t.today)
        table.add_row(*row)
    console.print(table)
