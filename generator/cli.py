"""The `dbgscaffold` command line: parse options, call one stage, print, exit.

Exit codes (see errors.py): 0 success, 1 checks failed, 2 usage or input
error (nothing written), 3 build failed, 4 environment missing, 5 timeout,
6 crash.  Heavy modules are imported inside the commands so that
`dbgscaffold --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from . import cli_completion as completion
from .errors import EXIT_USAGE, UserError, environment_problem
from .paths import atomic_write, cache_location

SPECS_DIR = Path(__file__).resolve().parent / "specs"
STRESS_SECONDS = 6.0  # dbgscaffold test --stress: the guest's whole budget for it
KERNEL_HELP = ("a release or series of an installed kernel (6.1, 6.12), or PATH: a kernel build tree (in-tree or O=), "
               "or an image file with --headers; see 'dbgscaffold kernels'")


def _fail(exc: UserError) -> None:
    click.echo(str(exc), err=True)
    sys.exit(exc.exit_code)


def _print_warnings(spec) -> None:
    for warning in spec.warnings:
        click.echo(str(warning), err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbgscaffold")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Write, check and test Linux kernel modules that expose debugfs trees.

    Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
    Shell completion: eval "$(_DBGSCAFFOLD_COMPLETE=bash_source dbgscaffold)" (or
    zsh_source, fish_source), e.g. in ~/.bashrc."""
    import os

    if os.environ.get("NO_COLOR"):  # rich reads it itself; click.style's codes are dropped here
        ctx.color = False


@cli.command()
@click.argument("name", required=False)
@click.option("--spec", "spec_path",
              type=click.Path(path_type=Path, dir_okay=True), help="A dbgscaffold.toml describing the debugfs tree (default: the classic example).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write the project (default: ./NAME).")
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty output directory.")
@click.option("--into", "into", type=click.Path(path_type=Path, file_okay=False),
              help="Add the debugfs files to this existing module project (its Kbuild or Makefile gains the objects) instead.")
@click.option("--module", "module_name", metavar="NAME", help="With --into: the module of the Kbuild the files join, when it builds several.")
def new(name: str | None, spec_path: Path | None, output: Path | None, force: bool, into: Path | None, module_name: str | None) -> None:
    """Generate a module project NAME from a spec.

    Without --spec, NAME is required and the project is the classic debugfs
    example: `a` (u8), `b` (read-only blob) and `subdir/c` (a char buffer).
    With --spec, NAME is optional and overrides the spec's [module].name.

    With --into DIR the debugfs code joins your own module instead: the spec's
    C (NAME_debugfs.c, .h, NAME_compat.h), user/ starters and the spec are
    added, and a marked block of DIR's Kbuild lists their objects; call
    NAME_debugfs_init() and NAME_debugfs_exit() from your init and exit.
    """
    from .render import into_project, new_project
    from .spec import load_spec, parse_spec

    if into is not None and (output is not None or force):
        raise click.UsageError("--into adds to an existing project: -o and --force do not apply.")
    if module_name is not None and into is None:
        raise click.UsageError("--module goes with --into.")

    try:
        if spec_path is None:
            if name is None:
                raise click.UsageError("NAME is required without --spec (e.g. 'dbgscaffold new mydebug').")
            text = (SPECS_DIR / "classic.toml").read_text(encoding="utf-8")
            spec = parse_spec(text, f"NAME '{name}'", name_override=name)
        else:
            spec = load_spec(spec_path, name_override=name)
        _print_warnings(spec)
        if into is not None:
            result = into_project(spec, into, module_name)
        else:
            result = new_project(spec, output if output is not None else Path(spec.module.name), force=force)
    except UserError as exc:
        _fail(exc)
    rel = _shown(result.project)
    if into is not None:
        n = spec.module.name
        click.echo(f"Added to {rel}/ : {len(spec.entries)} entries under /sys/kernel/debug/{spec.module.root}/")
        for f in result.generated + result.user_files + ["dbgscaffold.toml"]:
            click.echo(f"  {f}")
        click.echo(f"Next: call {n}_debugfs_init() from your module's init and {n}_debugfs_exit() from its exit"
                   f" (#include \"{n}_debugfs.h\"), then make -C {rel}")
        return
    click.echo(f"Created {rel}/ : module {spec.module.name}, {len(spec.entries)} entries under /sys/kernel/debug/{spec.module.root}/")
    for f in result.generated + result.user_files + ["dbgscaffold.toml"]:
        click.echo(f"  {f}")
    click.echo(f"Next: make -C {rel}   (KDIR=/lib/modules/<release>/build for another kernel)")


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite generated files even if they were edited by hand.")
def regen(directory: Path, force: bool) -> None:
    """Re-render the generated files of DIRECTORY after its dbgscaffold.toml changed.

    Files in user/ and the spec itself are never touched; handlers for new
    seq and custom entries are created in user/ if missing.
    """
    from .render import regen_project

    try:
        result = regen_project(directory, force=force)
    except UserError as exc:
        _fail(exc)
    click.echo(f"Regenerated {len(result.generated)} files in {_shown(result.project)}/")
    for f in result.user_files:
        click.echo(f"  created {f}")
    for f in result.removed:
        click.echo(f"  removed {f} (no longer generated)")
    for f in result.orphaned:
        click.echo(f"  note: {f} is no longer used by any entry; delete it when you are done with it")


@cli.group()
def spec() -> None:
    """Print or check dbgscaffold.toml specs."""


@spec.command("example")
def spec_example() -> None:
    """Print a commented spec that uses every entry type."""
    click.echo((SPECS_DIR / "example.toml").read_text(encoding="utf-8"), nl=False)


@spec.command("classic")
def spec_classic() -> None:
    """Print the classic example spec that `new` uses by default."""
    click.echo((SPECS_DIR / "classic.toml").read_text(encoding="utf-8"), nl=False)


@spec.command("types")
def spec_types() -> None:
    """List the entry types, their ranges and modes."""
    from .kinds import TYPES

    for t in TYPES.values():
        rng = f"{t.minimum}..{t.maximum}" if t.minimum is not None else ""
        click.echo(f"{t.name:10} {t.default_mode}  {rng:28} {t.note}")


@spec.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def spec_check(file: Path) -> None:
    """Validate FILE and report every problem (exit 2 if any)."""
    from .spec import load_spec

    try:
        parsed = load_spec(file)
    except UserError as exc:
        _fail(exc)
    _print_warnings(parsed)
    click.echo(f"{file}: ok: module {parsed.module.name}, {len(parsed.entries)} entries")


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--kdir",
              "kdirs",
              multiple=True,
              type=click.Path(path_type=Path, file_okay=False),
              help="A kernel build directory to build against (repeatable; default: every /lib/modules/*/build).")
@click.option("--no-checkpatch", is_flag=True, help="Skip checkpatch.pl.")
@click.option("--no-build", is_flag=True, help="Skip the W=1 C=2 builds.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema dbgscaffold/lint/v1) instead.")
def lint(directory: Path, kdirs: tuple[Path, ...], no_checkpatch: bool, no_build: bool, as_json: bool) -> None:
    """Hold a module project to the kernel's bar: checkpatch --strict and W=1
    builds with sparse against each kernel's headers, all with zero findings.

    Exit 0 when clean, 1 on any finding, 3 when a build fails, 4 when a tool
    or kernel headers are missing.
    """
    from dataclasses import asdict

    from . import schemas
    from .errors import EXIT_BUILD, EXIT_CHECKS_FAILED, EnvironmentProblem
    from .kernels import KernelHeaders, find_headers
    from .lint import lint as run_lint
    from .lint import source_files

    try:
        if not source_files(directory):
            raise UserError(f"{directory}: error: no C sources here. Fix: pass a module project directory.")
        kernels = [] if no_build else ([KernelHeaders(p.resolve().name if p.name == "build" else p.name, p) for p in kdirs] or find_headers())
        if not no_build and not kernels:
            raise EnvironmentProblem("error: no kernel headers found in /lib/modules/*/build. Fix: apt-get install linux-headers-amd64, or pass --kdir.")
        report = run_lint(directory, kernels, checkpatch=not no_checkpatch)
    except UserError as exc:
        if as_json:
            click.echo(schemas.dumps(schemas.LINT, {"exit_code": exc.exit_code, "error": str(exc), "checkpatch": None, "builds": []}), nl=False)
        _fail(exc)
    code = EXIT_BUILD if report.build_failed else EXIT_CHECKS_FAILED if report.findings else 0
    if as_json:
        checkpatch = report.checkpatch
        click.echo(schemas.dumps(schemas.LINT, {
            "exit_code": code, "error": None,
            "checkpatch": None if checkpatch is None else {
                "lines_checked": checkpatch.lines_checked, "findings": [asdict(f) for f in checkpatch.findings]},
            "builds": [{"kernel": release, "ok": result.ok, "seconds": round(result.seconds, 2),
                        "diagnostics": [asdict(d) for d in result.diagnostics]} for release, result in report.builds.items()],
        }), nl=False)
        sys.exit(code)
    if report.checkpatch is not None:
        for finding in report.checkpatch.findings:
            click.echo(str(finding))
        state = "clean" if not report.checkpatch.findings else f"{len(report.checkpatch.findings)} findings"
        click.echo(f"checkpatch --strict: {state} ({report.checkpatch.lines_checked} lines)")
    for release, result in report.builds.items():
        for diag in result.diagnostics:
            click.echo(f"[{release}] {diag}")
        state = "clean" if result.ok and not result.diagnostics else ("FAILED" if not result.ok else f"{len(result.diagnostics)} findings")
        click.echo(f"build {release} W=1 C=2: {state} ({result.seconds:.1f} s)")
    sys.exit(code)


@cli.command("check-config")
@click.argument("config", required=False, type=click.Path(path_type=Path))
@click.option("-p", "--profile", "profiles", multiple=True, metavar="NAME", shell_complete=completion.profiles,
              help="Profile to check (repeatable; default: systemtap). See --list-profiles.")
@click.option("--srctree", type=click.Path(path_type=Path, file_okay=False),
              help="A kernel source tree: its Kconfig files (and its .config if no CONFIG is given).")
@click.option("--build-dir", type=click.Path(path_type=Path, file_okay=False), help="An O= build directory holding the .config.")
@click.option("--arch", help="SRCARCH of the config (default: from its header, else x86).")
@click.option("--flat", is_flag=True, help="Values only: do not load a Kconfig tree.")
@click.option("--runtime/--no-runtime", default=None, help="Check the running kernel's readiness too (default: only when checking its config).")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on recommended options too.")
@click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON document instead of tables.")
@click.option("--explain", is_flag=True, help="Print the classic ftrace tracers mapped to today's kernels.")
@click.option("--list-profiles", is_flag=True, help="List the profiles and exit.")
@click.option("--fix-fragment", type=click.Path(path_type=Path, dir_okay=False), help="Write a config fragment with only the fix lines that take effect.")
@click.option("--scripts-config", is_flag=True, help="Print the fix as scripts/config commands.")
@click.option("--apply", "apply_to", type=click.Path(path_type=Path, dir_okay=False), help="Write the fixed .config to this file, then re-check it.")
@click.option("--in-place", is_flag=True, help="Fix CONFIG itself (a .bak copy is kept), then re-check it.")
def check_config(config, profiles, srctree, build_dir, arch, flat, runtime, strict, as_json, explain, list_profiles, fix_fragment, scripts_config,
                 apply_to, in_place) -> None:
    """Check a kernel config for what debugging tools need.

    CONFIG is a .config (plain or .gz); without it the running kernel's config
    (/proc/config.gz, /boot/config-$(uname -r), ...), or --srctree's .config.
    With a Kconfig tree (--srctree, or Debian's linux-source-X.Y for the
    config's version, found automatically) each failing option is explained:
    not in this kernel, blocked by a dependency (down to what you can
    change), promptless (set through another symbol or a choice), or just
    off; and fixes are verified before they are offered.

    Exit 0 when every required option holds, 1 when one fails (recommended
    ones too with --strict; after --apply/--in-place, judged on the written
    config), 2 on usage or input errors.
    """
    from .kconfig.check import DEFAULT_PROFILES, CheckRequest, run_check
    from .kconfig.profiles import available_profiles, load_profile, load_tracer_map
    from .kconfig.report import print_json, print_report, print_tracer_map

    try:
        if list_profiles:
            for name in available_profiles():
                profile = load_profile(name)
                click.echo(f"{name:10} {len(profile.options):2} options  {profile.title}")
            return
        request = CheckRequest(
            config=config,
            profiles=tuple(profiles) or DEFAULT_PROFILES,
            srctree=srctree,
            build_dir=build_dir,
            arch=arch,
            tree="never" if flat else "auto",
            runtime=runtime,
            strict=strict,
            fix_fragment=fix_fragment,
            scripts_config=scripts_config,
            apply=apply_to,
            in_place=in_place,
        )
        if flat and request.wants_fix:
            raise click.UsageError("fixes are verified on the Kconfig tree: drop --flat.")
        if explain and config is None and srctree is None and build_dir is None:
            print_tracer_map(load_tracer_map())
            return
        report = run_check(request)
    except UserError as exc:
        _fail(exc)
    if as_json:
        print_json(report)
    else:
        if explain:
            print_tracer_map(load_tracer_map(), report)
            click.echo()
        print_report(report)
    sys.exit(report.exit_code)


def _print_diagnostics(diagnostics, release: str) -> None:
    for d in diagnostics:
        colour = "red" if d.severity == "error" else "yellow"
        click.echo(f"[{release}] " + click.style(str(d), fg=colour), err=True)


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--kernel", metavar="RELEASE|PATH", shell_complete=completion.kernels, help=f"Build against this kernel's headers: {KERNEL_HELP}.")
@click.option("--headers", type=click.Path(path_type=Path, file_okay=False), help="With --kernel IMAGE: the headers (build tree) of that image's release.")
@click.option("--kdir", type=click.Path(path_type=Path, file_okay=False), help="A kernel build directory to use instead (what make -C wants).")
def build(directory: Path, kernel: str | None, headers: Path | None, kdir: Path | None) -> None:
    """Build the module in DIRECTORY with kbuild (make -C KDIR M=DIR modules).

    Compiler warnings and errors are listed one per line, file:line first.
    Exit 0 when built, 3 when the build fails, 4 when headers or make are missing.
    """
    from .errors import EXIT_BUILD
    from .kbuild import build as run_build
    from .kbuild import kernel_name_clashes, module_makefile, source_files
    from .runner.kernels import resolve

    try:
        module_makefile(directory)
        if not source_files(directory):
            raise UserError(f"{directory}: error: no C sources here. Fix: pass a module project directory.")
        if kernel and kdir:
            raise click.UsageError("give --kernel or --kdir, not both.")
        if kdir is not None:
            release, build_dir = kdir.resolve().parent.name if kdir.name == "build" else kdir.name, kdir
        else:
            pairs, reason = resolve(kernel, headers=headers)
            release, build_dir = pairs[0].release, pairs[0].build_dir
            click.echo(reason, err=True)
        result = run_build(directory, build_dir)
    except UserError as exc:
        _fail(exc)
    _print_diagnostics(result.diagnostics, release)
    if not result.ok:
        if not result.diagnostics:
            click.echo(result.output.rstrip(), err=True)
        for note in kernel_name_clashes(result.output, directory):
            click.echo(f"[{release}] note: {note}", err=True)
        counts = f" ({len(result.errors)} errors, {len(result.warnings)} warnings, {result.seconds:.1f} s)"
        click.echo(click.style(f"build against {release} FAILED", fg="red") + counts, err=True)
        sys.exit(EXIT_BUILD)
    kos = sorted(str(p.relative_to(directory)) for p in directory.rglob("*.ko"))
    click.echo(f"built {', '.join(kos) or 'the module'} against {release} ({len(result.warnings)} warnings, {result.seconds:.1f} s)")


@cli.command()
@click.argument("directories", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
@click.option("--kernel", metavar="RELEASE|PATH", shell_complete=completion.kernels, help=f"Test on this kernel: {KERNEL_HELP}.")
@click.option("--headers", type=click.Path(path_type=Path, file_okay=False), help="With --kernel IMAGE: the headers (build tree) of that image's release.")
@click.option("--all-kernels", is_flag=True, help="Test on every kernel image + headers pair found.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0,
              show_default=True, help="Seconds one module's run in the VM may take before it counts as hung.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the JSON report here.")
@click.option("--ktap", is_flag=True,
              help="Write one KTAP document to stdout (the tables go to stderr): each module on each kernel a subtest; streamed when there is one.")
@click.option("--keep-logs", type=click.Path(path_type=Path, file_okay=False), help="Keep console.log and results.log of each run here.")
@click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto",
              show_default=True, help="QEMU accelerator; auto probes KVM and falls back to TCG.")
@click.option("--stress", "stress",
              is_flag=True, help=f"Also hammer the files: concurrent readers and writers, random and oversized writes ({STRESS_SECONDS:g} s in all).")
@click.option("--check-timeout", type=click.FloatRange(min=1),
              default=None, help="Seconds one check may take inside the guest (default: a third of --timeout, at most 20).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=2, show_default=True, help="VMs side by side when testing several modules.")
@click.option("--fresh-boot", is_flag=True, help="Boot the kernel every time: neither use nor save the VM snapshot.")
@click.option("--sanitize", is_flag=True,
              help="Boot with the memory debugging the kernel has but leaves off: slub_debug=FZPU, page_poison=1, init_on_free=1, "
                   "KFENCE sampling (the report header names what was active).")
@click.option("--untrusted", is_flag=True,
              help="The code is not yours: build a copy in a sandbox (bubblewrap: host read-only, no network, no home, bounded).")
@click.option("-q", "--quiet", count=True, help="No table: only the checks that failed, and the verdict.")
@click.option("-v", "--verbose", count=True, help="Every diagnostic and subtest line in the table, not the first few.")
def test(directories, kernel, headers, all_kernels, timeout, junit, json_path, ktap, keep_logs, accel, stress, check_timeout, jobs, fresh_boot,
         sanitize, untrusted, quiet, verbose) -> None:
    """Build the modules in each of DIRECTORIES (default: .), run them in a QEMU VM
    and check them.

    A directory is any kbuild module directory (a Kbuild, or a Makefile naming
    obj-m; several modules load in dependency order). Made by 'dbgscaffold new',
    its dbgscaffold.toml declares the debugfs files to check; otherwise the checks
    are discovered at run time (what the modules create in debugfs, /proc and
    their parameters: it exists with a sane mode, reads, and a number or Y/N takes
    its value back; all gone after rmmod). A [test] table in dbgscaffold.toml sets
    params, modules, timeout and discover. Executable tests/*.sh run too.

    The VM is restored from a saved snapshot of a booted guest when one matches
    the kernel, initramfs and QEMU (else it boots, and saves one). Several
    modules run one after another in --jobs VMs; a module that crashes its VM
    costs a fresh VM for the next one, never a wrong verdict.

    Exit (the worst over all runs): 0 pass, 1 check failures, 2 usage or spec
    error, 3 build failed, 4 environment missing (qemu, kernel, headers,
    busybox, or bubblewrap for --untrusted), 5 timeout/hang, 6 crash (oops,
    panic, or a D/W/L/B taint).
    """
    from rich.console import Console

    from .runner import report
    from .runner.execute import RunOptions, failure_of_error
    from .runner.kernels import resolve
    from .runner.ktap_out import KtapDocument
    from .runner.model import TestRun
    from .runner.project import load_project, run_tests
    from .sandbox import require as require_sandbox
    from .untrusted_build import Untrusted

    # --ktap: stdout is the KTAP document alone; the tables go to stderr
    out = Console(stderr=True, highlight=False, soft_wrap=True) if ktap else Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    directories = list(directories) or [Path(".")]
    names = [Path(d).resolve().name for d in directories]  # the projects' own, once they load
    runs: list = []
    releases: list[str] = []
    document: KtapDocument | None = None
    streaming = False  # a run's KTAP lines are being written, its result not yet
    try:
        if untrusted:
            require_sandbox("test --untrusted")
        projects = [load_project(d) for d in directories]
        names = [p.name for p in projects]
        for project in projects:
            _print_warnings(project)
        pairs, reason = resolve(kernel, all_kernels, headers)
        releases = [p.release for p in pairs]
        err.print(reason)
        document = KtapDocument(len(projects) * len(pairs))
        stream = ktap and document.runs == 1  # several runs' lines would interleave: each is written whole
        if ktap:
            click.echo(document.header(), nl=False)
        for pair in pairs:
            logs = None
            if keep_logs is not None:
                logs = keep_logs / pair.release if len(pairs) > 1 else keep_logs
            with err.status(f"{', '.join(names)}: building and starting {pair.release}...") as status:
                progress = report.Progress([p.name for p in projects], pair.release)

                if stream:
                    document.start(projects[0].name, pair.release)
                    streaming = True

                def on_line(i: int, line: str, progress=progress, document=document) -> None:
                    if stream:
                        click.echo(document.line(line), nl=False)
                    text = progress.update(i, line)
                    if text:
                        status.update(text)

                options = RunOptions(timeout, check_timeout if check_timeout else min(20.0, timeout / 3), accel, jobs,
                                     not fresh_boot, logs, sanitize=sanitize)
                batch = run_tests(projects, pair, options, STRESS_SECONDS if stress else 0.0, on_line,
                                  Untrusted() if untrusted else None)
            for one in batch:
                if ktap:
                    click.echo(document.end(one) if stream else document.whole(one), nl=False)
                    streaming = False
                if one.build_failure is not None:
                    _print_build_failure(one.build_failure)
                    continue
                report.print_run(one, out, verbose - quiet)
            runs.extend(batch)
    except UserError as exc:
        # the reports say it too: CI gets an error test case (and KTAP a not-ok result) for
        # every run that did not happen, not a missing file or a document cut short
        ran = {r.release for r in runs}
        lost = [TestRun.of_build_failure(name, failure_of_error(release, Path(d), exc))
                for release in ([r for r in releases if r not in ran] or [""]) for d, name in zip(directories, names)]
        if ktap:
            if document is None:
                document = KtapDocument(len(lost))
                click.echo(document.header(), nl=False)
            for one in lost:
                click.echo(document.end(one) if streaming else document.whole(one), nl=False)
                streaming = False
        runs += lost
        _write_reports(runs, junit, json_path)
        click.echo(str(exc), err=True)
        sys.exit(max(r.exit_code for r in runs))
    _write_reports(runs, junit, json_path)
    if len(runs) > 1:
        for one in runs:
            out.print(f"{one.module} on {one.release}: {one.verdict} (exit {one.exit_code})")
    sys.exit(max(r.exit_code for r in runs))


def _write_reports(runs, junit: Path | None, json_path: Path | None) -> None:
    from .runner import report

    if junit is not None:
        atomic_write(junit, report.junit_xml(runs).encode())
    if json_path is not None:
        atomic_write(json_path, report.json_text(runs).encode())


def _print_build_failure(failure) -> None:
    """A failed build as `dbgscaffold build` shows it: the compiler's messages, the notes, one summary line."""
    if failure.diagnostics:
        _print_diagnostics(failure.diagnostics, failure.release)
    else:
        click.echo(str(failure) if failure.exit_code != 2 else "\n".join(failure.lines), err=True)
    for note in failure.notes:
        click.echo(f"[{failure.release}] note: {note}", err=True)
    if failure.exit_code != 2:
        click.echo(click.style(f"build against {failure.release} FAILED", fg="red")
                   + f" ({len(failure.errors)} errors, {len(failure.warnings)} warnings)", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema dbgscaffold/kernels/v1) instead.")
def kernels(as_json: bool) -> None:
    """List the kernels tests can use: the installed image + headers pairs (and which
    one is the default), then the kernel build trees given to --kernel PATH before.
    Exit 4 when there is none."""
    import os

    from . import schemas
    from .kernel_build import built_kernels
    from .runner.kernels import remembered_trees
    from .vm import images

    scan = images.scan_pairs()
    default, reason = images.choose_default(scan.pairs, os.uname().release)
    built = built_kernels()
    trees = [(tree, release) for tree, release in remembered_trees() if all(tree != b.tree for b in built)]
    if as_json:
        click.echo(schemas.dumps(schemas.KERNELS, {
            "default": default.release if default else None,
            "reason": reason,
            "pairs": [{"release": p.release, "image": str(p.image), "build_dir": str(p.build_dir), "default": p == default} for p in scan.pairs],
            "incomplete": [str(x) for x in scan.problems],
            "built": [{"name": b.name, "release": b.release, "tree": str(b.tree)} for b in built],
            "trees": [{"release": release, "tree": str(tree)} for tree, release in trees],
        }), nl=False)
        sys.exit(0 if default else 4)
    for pair in scan.pairs:
        mark = "*" if pair == default else " "
        click.echo(f"{mark} {pair.release:28} {pair.image}  {pair.build_dir}")
    for problem in scan.problems:
        click.echo(f"  incomplete: {problem}")
    for b in built:
        click.echo(f"  {b.release:28} {b.tree}  (--kernel {b.name}: built by 'dbgscaffold kernel build')")
    for tree, release in trees:
        click.echo(f"  {release:28} {tree}  (--kernel {tree})")
    click.echo(f"default: {reason}" if default else f"no kernel: {reason}. Fix: apt-get install linux-image-amd64 linux-headers-amd64.")
    if default is None:
        sys.exit(4)


@cli.group("kernel")
def kernel_group() -> None:
    """Kernels for the test VM, built from source."""


@kernel_group.command("build")
@click.option("--source", default=None, metavar="X.Y|PATH",
              help="Debian's linux-source-X.Y (6.1, 6.12) or a kernel source tree (default: the newest linux-source installed).")
@click.option("-p", "--profile", "profiles", multiple=True, metavar="NAME", shell_complete=completion.profiles,
              help="A check-config profile the kernel must satisfy (repeatable; default: debug). The VM's own profile is always added.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="make -j (default: the number of CPUs).")
def kernel_build_command(source: str | None, profiles: tuple[str, ...], jobs: int | None) -> None:
    """Build a small kernel the test VM boots: tinyconfig + kernel_configs/vm.config +
    the profiles, made consistent by check-config's verified fix, then bzImage and
    what out-of-tree modules need, in the cache. Use it with --kernel NAME, e.g.
    'dbgscaffold test DIR --kernel debug-6.1'. A second identical request returns at
    once; an interrupted build leaves nothing a later one mistakes for finished.

    Exit 0 built, 1 a profile cannot hold on this source (check-config says why),
    2 usage, 3 make failed, 4 a build tool or the source is missing."""
    from rich.console import Console

    from .kernel_build import build_kernel, newest_source, source_for

    err = Console(stderr=True, highlight=False)
    try:
        tree = source_for(source or newest_source(), log=lambda text: err.print(text))
        with err.status("building...") as status:
            built = build_kernel(tree, profiles or ("debug",), jobs, log=lambda text: status.update(text))
    except UserError as exc:
        _fail(exc)
    how = f"built in {built.seconds:.0f} s" if built.seconds else "already built"
    click.echo(f"{built.name}: {built.release}, {how}: {built.tree}")
    for line in built.config_fixes:
        click.echo(f"  check-config added: {line}")
    if built.not_taken:
        click.echo(f"  recommended but off on this source: {', '.join(built.not_taken)}")
    click.echo(f"Next: dbgscaffold test DIR --kernel {built.name}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema dbgscaffold/doctor/v1) instead.")
def doctor(as_json: bool) -> None:
    """Check what `dbgscaffold test` needs: qemu, a readable kernel image, matching
    headers, a static busybox, make, and whether KVM is usable. Each problem
    comes with the exact fix. Exit 4 when something required is missing."""
    from . import schemas
    from .doctor import diagnose

    items = diagnose()
    missing = any(item.state == "fail" for item in items)
    if as_json:
        click.echo(schemas.dumps(schemas.DOCTOR, {"ready": not missing, "items": [
            {"what": i.what, "state": i.state, "detail": i.detail, "fix": i.fix or None} for i in items]}), nl=False)
        sys.exit(4 if missing else 0)
    for item in items:
        mark = {"ok": click.style("ok  ", fg="green"), "warn": click.style("note", fg="yellow"), "fail": click.style("FAIL", fg="red")}[item.state]
        click.echo(f"{mark} {item.what}: {item.detail}")
        if item.fix:
            click.echo(f"     Fix: {item.fix}")
    if missing:
        sys.exit(4)


@cli.group()
def vm() -> None:
    """The test VM, interactively."""


@vm.command("shell")
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--kernel", metavar="RELEASE|PATH", shell_complete=completion.kernels, help=f"Boot this kernel: {KERNEL_HELP}.")
@click.option("--headers", type=click.Path(path_type=Path, file_okay=False), help="With --kernel IMAGE: the headers (build tree) of that image's release.")
@click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=None, help="Power off after this many seconds (default: never).")
@click.option("--gdb", is_flag=True, help="QEMU's gdb stub, the kernel booted nokaslr: the banner prints the gdb command that "
              "attaches with the module's symbols where it lies.")
@click.option("--gdb-port", type=click.IntRange(1, 65535), default=None, help="With --gdb: this TCP port (default: a free one).")
def vm_shell(directory: Path, kernel: str | None, headers: Path | None, accel: str, timeout: float | None, gdb: bool,
             gdb_port: int | None) -> None:
    """Build the modules in DIRECTORY (any kbuild module directory, a project made
    by 'dbgscaffold new' or 'dbgscaffold lab start'), boot the test VM with them
    loaded (in dependency order, with [test] params), debugfs and tracefs
    mounted, and give you a shell on its serial console (in the debugfs root of
    a generated module). A lab project's student files and tests/ are in /root.
    The check library is /checks/ktap.sh. Exiting the shell powers the VM off."""
    import tempfile

    from .errors import EXIT_ENVIRONMENT, EXIT_TIMEOUT
    from .lab.project import MARKER
    from .runner.checks import guest_files
    from .runner.kernels import resolve
    from .vm.shell import run_shell

    try:
        # a wrong directory is reported before any kernel is looked for
        lab = _lab_of(directory) if (directory / MARKER).is_file() else None
        if lab is None:
            from .runner.project import load_project

            project = load_project(directory)
        pairs, reason = resolve(kernel, headers=headers)
        click.echo(reason, err=True)
        with tempfile.TemporaryDirectory(prefix="dbgscaffold-shell-") as tmp:
            if lab is not None:
                from .lab.shell import lab_guest

                guest = lab_guest(lab, directory.resolve(), pairs[0], Path(tmp))
            else:
                from .runner.shell import module_guest

                guest = module_guest(project, pairs[0], Path(tmp))
            port = (gdb_port or _free_port()) if gdb else None
            if port is not None:
                from .runner.shell import with_gdb

                guest = with_gdb(guest, pairs[0], port)
            status = run_shell(guest, pairs[0], Path(tmp), accel=accel, timeout=timeout, library=guest_files(), gdb_port=port)
    except UserError as exc:
        _fail(exc)
    if status == 124:
        click.echo(f"vm shell: powered off after {timeout:g} s", err=True)
        sys.exit(EXIT_TIMEOUT)
    if status != 0:
        click.echo(f"vm shell: error: QEMU exited with status {status} (its message is above). Fix: run 'dbgscaffold doctor'.", err=True)
        sys.exit(EXIT_ENVIRONMENT)


class _CommandAfterDashes(click.Command):
    """`vm run [OPTIONS] [DIR] -- CMD...`: everything after the first `--` is CMD, as it is."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            args, ctx.meta["command"] = args[:at], args[at + 1:]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] [DIRECTORY] -- CMD...")


@vm.command("run", cls=_CommandAfterDashes)
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--kernel", metavar="RELEASE|PATH", shell_complete=completion.kernels, help=f"Boot this kernel: {KERNEL_HELP}.")
@click.option("--headers", type=click.Path(path_type=Path, file_okay=False), help="With --kernel IMAGE: the headers (build tree) of that image's release.")
@click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds the whole run may take.")
@click.option("--gdb", is_flag=True, help="QEMU's gdb stub, the kernel booted nokaslr (a fresh boot): prints the gdb command that "
              "attaches with the module's symbols where it lies.")
@click.option("--gdb-port", type=click.IntRange(1, 65535), default=None, help="With --gdb: this TCP port (default: a free one).")
@click.pass_context
def vm_run(ctx: click.Context, directory: Path, kernel: str | None, headers: Path | None, accel: str, timeout: float, gdb: bool,
           gdb_port: int | None) -> None:
    """Run `-- CMD...` in the test VM with the modules of DIRECTORY loaded (in dependency
    order, with [test] params), in a copy of DIRECTORY, and exit with its status. Its
    output (stdout and stderr, merged) streams line by line; its stdin is /dev/null
    (vm shell is the interactive one). The VM is restored from the
    snapshot `test` uses, on the same kernels. A crash, an oops or a hang is reported as
    `test` reports it (exit 6, 5); a module that does not build exits 3, one that does
    not load 1. Example: dbgscaffold vm run mydebug -- cat /sys/kernel/debug/mydebug/a"""
    import shlex

    from .errors import EXIT_CHECKS_FAILED
    from .runner import report
    from .runner.execute import RunOptions, RunRequest, run
    from .runner.kernels import resolve
    from .runner.project import load_project
    from .runner.vm_run import CommandChecks, exit_of, gdb_command, gdb_section, kernel_symbols, output_of

    words = ctx.meta.get("command") or []
    if not words:
        raise click.UsageError("no command: write it after --, e.g. dbgscaffold vm run mydebug -- cat /sys/kernel/debug/mydebug/a")
    command = words[0] if len(words) == 1 else shlex.join(words)  # one word: a shell command line as it is
    try:
        project = load_project(directory)
        pairs, reason = resolve(kernel, headers=headers)
        click.echo(reason, err=True)
        pair = pairs[0]
        port = (gdb_port or _free_port()) if gdb else None
        checks = CommandChecks(project, command, gdb)
        sections: dict[str, dict[str, str]] = {}

        def on_line(_i: int, line: str) -> None:
            text = output_of(line)
            if text is not None:
                click.echo(text)
                return
            where = gdb_section(line)
            if where is not None:
                module, section, address = where
                sections.setdefault(module, {})[section] = address
            elif port is not None and line.startswith(("ok 1 ", "not ok 1 ")):  # the modules are loaded: how to attach
                for module, lies in sections.items():
                    if module in checks.debug_kos and ".text" in lies:
                        click.echo(f"gdb: {gdb_command(port, kernel_symbols(pair), checks.debug_kos[module], lies)}", err=True)

        options = RunOptions(timeout=timeout, check_timeout=None, accel=accel, jobs=1, gdb_port=port)
        (outcome, _), = run([RunRequest(project.name, project.path, checks, timeout)], pair, options, on_line)
    except UserError as exc:
        _fail(exc)
    if outcome.build_failure is not None:
        _print_build_failure(outcome.build_failure)
        sys.exit(outcome.exit_code)
    status = exit_of(outcome.checks[1].diagnostics) if len(outcome.checks) > 1 else None
    loaded = bool(outcome.checks) and not outcome.checks[0].failed
    if outcome.exit_code in (5, 6) or not loaded or status is None:  # a crash, a hang, no module, no end: say what happened
        report.print_run(outcome, _stderr_console(), -1)
        sys.exit(outcome.exit_code or EXIT_CHECKS_FAILED)
    sys.exit(status)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_of(directory: Path):
    """The lab of a lab project; a module lab only (vm shell loads a module you build)."""
    from .lab.manifest import find_lab
    from .lab.project import lab_of

    lab = find_lab(lab_of(directory))
    if lab.kind != "module":
        raise UserError(f"{directory.resolve()}: error: lab {lab.id!r} is a {lab.kind} lab; vm shell loads a kernel module you build. "
                        f"Fix: run its checks with 'dbgscaffold lab check {directory}'.")
    return lab


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds: every `finally` (VMs, half-built trees) runs


def main() -> None:
    """The console script: click's own handling, except that ^C (which click would turn
    into "Aborted!" and exit 1) says so and exits 130, as shells expect, and SIGTERM (a
    cancelled CI job) cleans up like ^C and exits 143."""
    import errno
    import signal

    signal.signal(signal.SIGTERM, _terminated)
    try:
        code = cli.main(standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted (nothing half-done is kept)", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:  # raised where no command catches it (e.g. the cache belongs to someone else)
        _fail(exc)
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # `dbgscaffold ... | head`: the reader left, as click's own main handles it
            sys.stdout = None  # type: ignore[assignment]  # nothing more can be written: no flush error at exit
            sys.exit(1)
        problem = environment_problem(exc, str(cache_location()))
        if problem is None:
            raise
        _fail(problem)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["cli", "main", "EXIT_USAGE"]


from .lab.cli import lab as _lab  # noqa: E402 - the `lab` group (its commands import lazily)

cli.add_command(_lab)
