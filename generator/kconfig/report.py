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


def print_report(report: CheckReport, order: dict[str, int] | None = None, file=None) -> None:
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
        if order:
            rows.sort(key=lambda r: order.get(r.symbol, len(order)))
        table = Table(title=f"{profile.name}: {profile.title}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("option", "level", "wanted", "actual", "status"):
            table.add_column(column)
        for r in rows:
            style = STATUS_STYLE[r.status]
            table.add_row(f"CONFIG_{r.symbol}", r.option.level, r.option.wanted_text, actual_text(r.actual), f"[{style}]{r.status}[/]")
        console.print()
        console.print(table)
        for r in rows:
            if r.status == OK:
                continue
            fails_run = r.status == FAIL and (report.strict or r.option.level == "required")
            mark = "FAIL" if fails_run else ("warn" if r.status == FAIL else "note")
            console.print(f"  {mark} CONFIG_{r.symbol} ({r.option.level}): {r.reason}", markup=False)
            console.print(f"       needed for: {r.option.why}", markup=False)
            for line in getattr(r.explanation, "lines", ()) or ():
                console.print(f"       {line}", markup=False)
            if r.option.note and r.status == FAIL:
                console.print(f"       note: {r.option.note}", markup=False)
            if r.fix:
                console.print("       fix: " + " ".join(_assignment(s, v) for s, v in r.fix), markup=False)
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
        f"option(s) failing{' (--strict: recommended count)' if report.strict else ''}; exit {report.exit_code}"
    )


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
