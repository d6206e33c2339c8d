"""`dbgscaffold lab ...`: click commands only; the work is in the lab package.

Imported by the main CLI at start-up: keep the imports here light (click only)
and import the rest inside the commands.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .. import cli_completion as completion

_KERNEL = click.option("--kernel", metavar="RELEASE|PATH", shell_complete=completion.kernels,
                       help="Run on this kernel: a release or series of an installed kernel "
                       "(6.1, 6.12), or PATH, a kernel build tree (default: the default kernel).")
_TIMEOUT = click.option("--timeout", type=click.FloatRange(min=5), default=60.0, show_default=True, help="Seconds one project's run in the VM may take.")
_CHECK_TIMEOUT = click.option("--check-timeout", type=click.FloatRange(min=1), default=10.0,
                              show_default=True, help="Seconds one check may take inside the guest.")


def _fail(exc) -> None:
    click.echo(str(exc), err=True)
    sys.exit(exc.exit_code)


@click.group()
def lab() -> None:
    """Teaching labs: skeletons to complete, checks in the VM, grading."""


# ---------------------------------------------------------------- list


def _requirements(the_lab, pairs) -> str:
    """'ok' or what the lab kernels' configs lack, per series (flat check of the profiles)."""
    from ..errors import UserError
    from ..kconfig.dotconfig import default_config_paths, read_dotconfig
    from ..kconfig.flat import check_flat
    from ..kconfig.profiles import load_profile

    if not the_lab.profiles:
        return "none"
    try:
        profiles = [load_profile(p) for p in the_lab.profiles]
    except UserError as exc:
        return f"profile error: {exc}"
    out = []
    for series in the_lab.kernels:
        pair = pairs.get(series)
        if pair is None:
            out.append(f"{series}: no kernel")
            continue
        config = next((p for p in default_config_paths(pair.release)[1:] if p.is_file()), None)
        if config is None:
            out.append(f"{series}: no config")
            continue
        failed = [r.symbol for r in check_flat(read_dotconfig(config), profiles) if r.failed_required]
        out.append(f"{series}: " + ("ok" if not failed else "needs " + ", ".join(f"CONFIG_{s}" for s in failed)))
    return "; ".join(out)


@lab.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema dbgscaffold/lab-list/v1) instead.")
def list_labs(as_json: bool) -> None:
    """List the labs: id, title, tasks and points, kernels, requirements."""
    from rich.console import Console
    from rich.table import Table

    from .. import schemas
    from ..runner.kernels import by_series
    from .manifest import discover

    found = discover()
    pairs = by_series()
    if as_json:
        click.echo(schemas.dumps(schemas.LAB_LIST, {
            "labs": [{"id": lb.id, "title": lb.title, "max_points": lb.max_points,
                      "tasks": [{"number": t.number, "title": t.title, "points": t.points} for t in lb.tasks],
                      "kernels": [{"series": s, "installed": s in pairs} for s in lb.kernels],
                      "requirements": _requirements(lb, pairs)} for lb in found.labs],
            "broken": [{"lab": name, "error": str(exc)} for name, exc in found.broken],
        }), nl=False)
        return
    table = Table(show_lines=False)
    for col in ("lab", "title", "tasks (points)", "kernels", "requirements"):
        table.add_column(col)
    for lb in found.labs:
        kernels = " ".join(f"{s}{'' if s in pairs else ' (missing)'}" for s in lb.kernels) or "any"
        table.add_row(lb.id, lb.title, f"{len(lb.tasks)} ({lb.max_points:g})", kernels, _requirements(lb, pairs))
    for name, _exc in found.broken:
        table.add_row(name, "[red]BROKEN: see below[/red]", "", "", "")
    Console(highlight=False, soft_wrap=not sys.stdout.isatty()).print(table)
    for name, exc in found.broken:
        click.echo(f"lab {name} does not load:\n{exc}", err=True)


# ---------------------------------------------------------------- start, solution


def _write(lab_id: str, directory: Path | None, solution: bool, force: bool) -> None:
    from ..errors import UserError
    from .manifest import find_lab
    from .project import write_project

    try:
        the_lab = find_lab(lab_id)
        dest = directory or Path(lab_id)
        files = write_project(the_lab, dest, solution=solution, force=force)
    except UserError as exc:
        _fail(exc)
    what = "solution" if solution else "skeleton"
    click.echo(f"Wrote the {what} of lab {the_lab.id} into {dest}/ ({len(files)} files)")
    if not solution:
        todos = sorted({r.task for r in the_lab.regions})
        click.echo(f"  {len(the_lab.tasks)} tasks (TODO {', '.join(map(str, todos))}); read {dest}/README.md")
        click.echo(f"Next: dbgscaffold lab check {dest}")


@lab.command()
@click.argument("lab_id", metavar="LAB", shell_complete=completion.labs)
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty DIR.")
def start(lab_id: str, directory: Path | None, force: bool) -> None:
    """Write the skeleton of LAB into DIR (default: ./LAB): sources with TODOs, README.md, tests/."""
    _write(lab_id, directory, False, force)


@lab.command()
@click.argument("lab_id", metavar="LAB", shell_complete=completion.labs)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty DIR.")
def solution(lab_id: str, directory: Path, force: bool) -> None:
    """Write the complete solution of LAB into DIR, with every check in tests/ (for instructors)."""
    _write(lab_id, directory, True, force)


# ---------------------------------------------------------------- check


def _print_outcome(o, out) -> None:
    """Per task: points and pass/fail; the failing checks' messages; a crash's source line."""
    s = o.score
    for t in s.tasks:
        mark = "pass" if t.passed == t.total and t.total else "FAIL"
        colour = "green" if mark == "pass" else "red"
        out.print(f"[{colour}]{mark:4}[/{colour}] task {t.number}  {t.points:g}/{t.max_points:g}  {t.title}", markup=True)
        for c in s.checks:
            if c.task != t.number or c.status in ("pass", "skip", "build failed"):
                continue
            out.print(f"       {c.status}: {c.name}" + (" (hidden)" if c.hidden else ""), markup=False)
            for d in c.diagnostics[:8]:
                if d.startswith(("uptime:", "taint:")):
                    continue
                out.print(f"         {d}", markup=False)
    for line in o.build_errors[:20]:
        out.print(f"  {line}", markup=False)
    if s.where:
        out.print(f"  crash at {s.where}", markup=False)
    out.print(f"{o.release}: {s.total:g}/{s.max_points:g} points — {s.verdict}", markup=False)


@lab.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@_KERNEL
@click.option("--all-kernels", is_flag=True, help="Run on every kernel image + headers pair found.")
@click.option("--hidden", is_flag=True, hidden=True, help="Run the hidden checks too (instructors).")
@_TIMEOUT
@_CHECK_TIMEOUT
@click.option("--untrusted", is_flag=True, help="Not your code (a TA checking a student's): build a copy with the lab's "
              "Kbuild in a sandbox (bubblewrap), as lab grade does.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the JSON report here (schema dbgscaffold/lab-check/v1), whatever happens.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML here, whatever happens.")
def check(directory: Path, kernel: str | None, all_kernels: bool, hidden: bool, timeout: float, check_timeout: float,
          untrusted: bool, json_path: Path | None, junit: Path | None) -> None:
    """Build the lab project in DIRECTORY, run its checks in the VM and score each task.

    Exit: 0 every task passes, 1 a check failed, 3 build failed, 4 environment
    missing (also bubblewrap for --untrusted), 5 timeout, 6 crash (with the
    source line and the TODO it is in).
    """
    from rich.console import Console

    from ..errors import UserError
    from ..runner.kernels import resolve
    from .engine import run_projects
    from .manifest import find_lab
    from .project import lab_of

    out = Console(highlight=False, soft_wrap=True)
    codes = []
    outcomes: list = []
    lab_id = None
    releases: list[str] = []
    try:
        how = None
        if untrusted:
            from ..sandbox import require as require_sandbox
            from ..untrusted_build import Untrusted

            require_sandbox("lab check --untrusted")
        the_lab = find_lab(lab_of(directory))
        lab_id = the_lab.id
        if untrusted:
            how = Untrusted(hide=(the_lab.root,))  # not even the lab's hidden checks
        pairs, reason = resolve(kernel, all_kernels)
        releases = [p.release for p in pairs]
        click.echo(reason, err=True)
        for pair in pairs:
            with out.status(f"{the_lab.id}: building and running on {pair.release}..."):
                o = run_projects(the_lab, [(directory.name or ".", directory)], pair, hidden, jobs=1, timeout=timeout,
                                 check_timeout=check_timeout, untrusted=how)[0]
            _print_outcome(o, out)
            outcomes.append(o)
            codes.append(o.score.exit_code)
    except UserError as exc:
        _write_check_reports(directory, lab_id, outcomes, releases, exc, json_path, junit)
        click.echo(str(exc), err=True)
        sys.exit(max([*codes, exc.exit_code]))  # the worst over all runs, as the report says
    _write_check_reports(directory, lab_id, outcomes, releases, None, json_path, junit)
    sys.exit(max(codes))


def _write_check_reports(directory: Path, lab_id: str | None, outcomes: list, releases: list[str], exc, json_path: Path | None,
                         junit: Path | None) -> None:
    """lab check's --json and --junit: every kernel's outcome, and what stopped the rest (an
    error test case in JUnit, `error` in the JSON)."""
    from .. import schemas
    from ..paths import atomic_write
    from ..runner.execute import failure_of_error
    from ..runner.model import TestRun
    from ..runner.report import junit_xml
    from .grade import student_doc

    runs = [o.run for o in outcomes]
    if exc is not None:
        ran = {o.release for o in outcomes}
        runs += [TestRun.of_build_failure(directory.resolve().name, failure_of_error(r, directory, exc))
                 for r in ([r for r in releases if r not in ran] or [""])]
    codes = [o.score.exit_code for o in outcomes] + ([exc.exit_code] if exc is not None else [])
    if json_path is not None:
        atomic_write(json_path, schemas.dumps(schemas.LAB_CHECK, {
            "lab": lab_id, "exit_code": max(codes), "error": str(exc) if exc is not None else None,
            "runs": [student_doc(o) for o in outcomes]}).encode())
    if junit is not None:
        atomic_write(junit, junit_xml(runs).encode())


# ---------------------------------------------------------------- selfcheck


@lab.command()
@click.argument("lab_id", metavar="[LAB]", required=False, shell_complete=completion.labs)
@_KERNEL
@_TIMEOUT
@_CHECK_TIMEOUT
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--thorough", is_flag=True, help="Also run the solution with each task's code stripped: that task's checks must all fail.")
@click.option("--mutants", is_flag=True, help="Also run the lab's planted bugs (mutants.toml): caught on their line where their "
              "detector watches (a debug kernel: --kernel debug-6.1), passing every check where none does.")
def selfcheck(lab_id: str | None, kernel: str | None, timeout: float, check_timeout: float, jobs: int, thorough: bool,
              mutants: bool) -> None:
    """Prove each lab (or LAB) on each of its kernels found: the solution passes every
    check; the skeleton compiles, scores less than full marks on every TODO task and
    fails every check of its own task (a check that cannot fail is a defect).
    Exit 1 on any defect, 4 when none of a lab's kernels is installed."""
    from rich.console import Console
    from rich.table import Table

    from ..errors import EXIT_ENVIRONMENT, UserError
    from ..runner.kernels import by_series, resolve
    from ..runner.kernels import series as series_of
    from .manifest import discover, find_lab
    from .selfcheck import selfcheck_lab

    out = Console(highlight=False, soft_wrap=True)
    table = Table()
    for col in ("lab", "kernel", "solution", "skeleton", "defects", "time"):
        table.add_column(col)
    found_defects: list[str] = []
    planted: list[str] = []
    missing = False
    try:
        if lab_id:
            labs, broken = [find_lab(lab_id)], []
        else:
            found = discover()
            labs, broken = list(found.labs), list(found.broken)
        pairs = by_series()
        if kernel:
            pair = resolve(kernel)[0][0]
            pairs = {series_of(pair): pair}
        for name, exc in broken:
            found_defects.append(f"{name}: the lab does not load:\n{exc}")
            table.add_row(name, "-", "-", "-", "does not load", "-")
        for lb in labs:
            series = list(pairs) if kernel else [s for s in lb.kernels if s in pairs]
            for s in lb.kernels:
                if s not in pairs and not kernel:
                    missing = True
                    table.add_row(lb.id, s, "-", "-", f"no {s} kernel installed", "-")
            for s in series:
                t0 = time.monotonic()
                with out.status(f"{lb.id} on {pairs[s].release}..."):
                    r = selfcheck_lab(lb, pairs[s], timeout=timeout, check_timeout=check_timeout, jobs=jobs, thorough=thorough,
                                      mutants=mutants)
                found_defects += [f"{lb.id} on {pairs[s].release}: {d}" for d in r.defects]
                planted += [f"{lb.id} on {pairs[s].release}: mutant {p.name}: {p.happened}" for p in r.planted]
                table.add_row(lb.id, pairs[s].release, r.solution, r.skeleton, str(len(r.defects)), f"{time.monotonic() - t0:.1f} s")
    except UserError as exc:
        _fail(exc)
    out.print(table)
    for line in planted:
        out.print(line, markup=False)
    for line in found_defects:
        out.print(f"DEFECT {line}", markup=False)
    if found_defects:
        out.print(f"selfcheck: {len(found_defects)} defect(s)", markup=False)
        sys.exit(1)
    out.print("selfcheck: no defects" + (" (some lab kernels are not installed)" if missing else ""), markup=False)
    if missing and not any(s in by_series() for lb in labs for s in lb.kernels):
        sys.exit(EXIT_ENVIRONMENT)


# ---------------------------------------------------------------- grade, merge


@lab.command()
@click.argument("submissions", required=False, type=click.Path(path_type=Path))
@click.option("--lab", "lab_id", metavar="LAB", shell_complete=completion.labs, help="The lab the submissions are for.")
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("grades.csv"), show_default=True, help="The CSV; the JSON goes beside it (.json).")
@_KERNEL
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=2, show_default=True, help="VMs side by side.")
@_TIMEOUT
@_CHECK_TIMEOUT
@click.option("--shard", metavar="K/N", help="Grade only the K-th of N shards of the sorted submissions (for CI).")
@click.option("--workflow", type=click.Path(path_type=Path, dir_okay=False),
              help="Instead of grading: write a CI workflow that shards the grading (see --ci).")
@click.option("--ci", type=click.Choice(["github", "gitlab"]), default="github", show_default=True,
              help="With --workflow: GitHub Actions (a matrix) or GitLab CI (parallel jobs).")
@click.option("--shards", type=click.IntRange(min=1), default=4, show_default=True, help="With --workflow: how many runners.")
@click.option("--install", metavar="SPEC", help="With --workflow (required): what the runners pip-install: your dbgscaffold repository "
              "(git+https://host/you/dbgscaffold) or a wheel committed beside the submissions (./dist/dbgscaffold-0.1.0-py3-none-any.whl).")
@click.option("--no-sandbox", is_flag=True, help="Build the submissions without the sandbox (only if you trust every one; "
              "for machines where bubblewrap cannot work). They are still built with the lab's own Kbuild.")
def grade(submissions, lab_id, out_path, kernel, jobs, timeout, check_timeout, shard, workflow, ci, shards, install, no_sandbox) -> None:
    """Grade SUBMISSIONS (one directory or .tar/.tar.gz/.tgz per student) with the
    visible and hidden checks of --lab: a CSV per student and task, and a JSON
    with every check. A build failure is 0 points; a crash is charged to its
    student only. Each submission is built from a copy with the lab's own Kbuild
    inside a sandbox (bubblewrap: the host read-only, no network, no home or cache,
    bounded CPU, processes and output); the results of its checks carry a token
    the module cannot know. Exit 0 when the reports are written; 4 when the
    sandbox cannot work here (unless --no-sandbox)."""
    from ..errors import UserError
    from .manifest import find_lab

    try:
        if not lab_id:
            raise click.UsageError("--lab LAB is required (see 'dbgscaffold lab list').")
        the_lab = find_lab(lab_id)
        if workflow is not None:
            from .grade import gitlab_ci_yaml, workflow_yaml

            if not install:
                raise click.UsageError("--workflow needs --install SPEC: what the runners pip-install, e.g. git+https://host/you/dbgscaffold "
                                       "or a wheel in the repository (pip wheel --no-deps -w dist /path/to/dbgscaffold). "
                                       "dbgscaffold is not on PyPI: the name alone would install whatever holds it there.")

            write = gitlab_ci_yaml if ci == "gitlab" else workflow_yaml
            workflow.parent.mkdir(parents=True, exist_ok=True)
            workflow.write_text(write(the_lab.id, shards, install, str(submissions or "submissions"), kernel or "6.1", jobs), encoding="utf-8")
            click.echo(f"Wrote {workflow}: {shards} shards of lab {the_lab.id}, then a merge job")
            return
        if submissions is None:
            raise click.UsageError("SUBMISSIONS is required (a folder with one directory or tarball per student).")
        from .grading import grade_folder

        doc, seconds, count = grade_folder(the_lab, submissions, kernel, jobs, timeout, check_timeout, shard,
                                           progress=lambda text: click.echo(text, err=True), sandboxed=not no_sandbox)
        from .grade import write_reports

        json_path = write_reports(doc, out_path)
    except UserError as exc:
        _fail(exc)
    click.echo(f"Graded {count} submissions in {seconds:.1f} s: {out_path} and {json_path}")
    for s in doc["students"]:
        click.echo(f"  {s['student']}: {s['total']:g}/{s['max']:g}  {s['verdict']}")


@lab.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The merged CSV; the JSON goes beside it.")
def merge(reports, out_path) -> None:
    """Merge the JSON reports of `lab grade --shard` runs into one CSV and JSON."""
    from ..errors import UserError
    from .grade import merge_docs, read_report, write_reports

    try:
        doc = merge_docs([read_report(p) for p in reports], [str(p) for p in reports])
        json_path = write_reports(doc, out_path)
    except UserError as exc:
        _fail(exc)
    click.echo(f"Merged {len(reports)} reports ({len(doc['students'])} students): {out_path} and {json_path}")
