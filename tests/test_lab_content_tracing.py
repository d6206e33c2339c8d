"""The tracing labs' content: relay (3), kprobes (4), ftrace (5), on both lab kernels.

- `lab selfcheck` proves each lab on 6.1 and 6.12 in the VM: the solution passes
  every visible and hidden check; the skeleton compiles and fails every check
  of its TODO tasks.
- Plausible wrong solutions (one edit of the solution each) fail a hidden
  check, most of them passing every visible one: the hidden checks earn their keep.
- The solutions are W=1 + sparse clean on both kernels and checkpatch --strict
  clean (ftrace: except TRACE_PRINTK, which is the lesson itself).
- The ftrace README's tracer table is what check-config's tracer map says of
  the two lab kernels' configs, and the guest really has the tracers and event
  systems the README (and the checks) rely on.
A lab's VM run takes ~5-13 s here (two VMs: solution and skeleton).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from conftest import KERNEL_SERIES, debian_config, require, require_tools, run_cli
from dbgscaffold.vm import images, initramfs

LABS = ("relay", "kprobes", "ftrace")
CONFIGS = {s: str(debian_config(s)) for s in ("6.1", "6.12")}  # the installed releases, discovered
# What the ftrace README says the lab VM has on both kernels (and the checks use).
GUEST_TRACERS = {"blk", "mmiotrace", "function_graph", "function", "nop"}
GUEST_EVENT_SYSTEMS = ("sched", "initcall", "power", "kmem", "workqueue")


def _pair(series: str):
    require_tools("qemu-system-x86_64", "make", "strip")
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    pairs = [p for p in images.scan_pairs().pairs if p.release.startswith(series + ".")]
    require(bool(pairs), f"a {series} kernel image + headers pair")
    if series == "6.12":
        require(shutil.which("zstd") is not None, "'zstd' on PATH (6.12 is zstd-compressed)")
    return pairs[-1]


@pytest.fixture(scope="module", params=KERNEL_SERIES)
def series(request) -> str:
    _pair(request.param)
    return request.param


def _lab(lab_id: str):
    from dbgscaffold.lab.manifest import find_lab

    return find_lab(lab_id)


# ---------------------------------------------------------------- the manifests (fast)


@pytest.mark.parametrize("lab_id", LABS)
def test_lab_loads_with_a_visible_and_a_hidden_check_per_task(lab_id):
    lab = _lab(lab_id)
    assert lab.kernels == ("6.1", "6.12") and len(lab.tasks) >= 3
    for t in lab.tasks:
        mine = [c for c in lab.checks if c.task == t.number]
        assert any(not c.hidden for c in mine) and any(c.hidden for c in mine), (lab_id, t.number)
    assert lab.readme.is_file()


def test_ftrace_trace_sh_is_the_students_and_parses_in_the_solution_and_the_skeleton(tmp_path):
    """The checks run the student's trace.sh: shipped from the project, with a TODO
    region per task; both versions are valid busybox sh (the skeleton's case branches
    are empty)."""
    import subprocess

    from dbgscaffold.lab.project import project_files

    lab = _lab("ftrace")
    assert lab.student_files == ("trace.sh",) and lab.check_lib is not None
    assert {r.task for r in lab.regions if r.file == "trace.sh"} == {t.number for t in lab.tasks}
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    for solution in (True, False):
        script = tmp_path / f"trace-{solution}.sh"
        text = project_files(lab, solution)["trace.sh"]
        script.write_bytes(text)
        assert subprocess.run([str(initramfs.BUSYBOX), "sh", "-n", str(script)], capture_output=True, timeout=10).returncode == 0
        assert (b"echo function > $T/current_tracer" in text) == solution


def test_ftrace_readme_table_is_check_configs_tracer_map():
    """The table between the markers is generated from kernel_configs/ftrace-tracers.toml
    (what `check-config --explain` prints) against the two lab kernels' configs."""
    from dbgscaffold.kconfig.profiles import load_tracer_map

    for path in CONFIGS.values():
        require(Path(path).is_file(), f"the lab kernel config {path}")
    values = {s: _config_values(Path(p)) for s, p in CONFIGS.items()}
    rows = [f"| classic tracer | today | config | {' | '.join(CONFIGS)} | what to use |",
            "|---|---|---|" + "---|" * len(CONFIGS) + "---|"]
    for t in load_tracer_map():
        symbols = [s for s in (t.config, t.also) if s]
        config = " + ".join(f"CONFIG_{s}" for s in symbols) or "-"
        here = ["gone" if not symbols else "yes" if all(v.get(s) in ("y", "m") for s in symbols) else "no"
                for v in values.values()]
        rows.append(f"| {t.name} | {t.status} | {config} | {' | '.join(here)} | {t.today.replace('|', '/')} |")
    text = _lab("ftrace").readme.read_text()
    table = re.search(r"<!-- tracer-table:begin -->\n(.*?)\n<!-- tracer-table:end -->", text, re.S)
    assert table, "no tracer table markers in the ftrace README"
    assert table.group(1) == "\n".join(rows), "regenerate the table: the tracer map or a config changed"
    # The README's summary agrees: the latency tracers are off on both kernels.
    for row in ("| wakeup | tracer | CONFIG_SCHED_TRACER | no | no |", "| irqsoff | tracer | CONFIG_IRQSOFF_TRACER | no | no |"):
        assert row in table.group(1)


def _config_values(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            out[k[len("CONFIG_"):]] = v
    return out


# ---------------------------------------------------------------- build quality


@pytest.mark.kbuild
@pytest.mark.parametrize("series", KERNEL_SERIES)
@pytest.mark.parametrize("lab_id", LABS)
def test_solution_builds_w1_sparse_clean(kernel_headers, series, lab_id, tmp_path):
    from test_quality_gates import _built

    lab = _lab(lab_id)
    work, result = _built(lab.solution, kernel_headers[series], tmp_path)
    assert result.ok, result.output
    assert result.diagnostics == [], "\n".join(map(str, result.diagnostics))
    assert "CHECK" in result.output and (work / f"{lab.module}.ko").is_file()


@pytest.mark.kbuild
@pytest.mark.parametrize("lab_id", LABS)
def test_solution_is_checkpatch_strict_clean(checkpatch_of_series, lab_id):
    from dbgscaffold.checkpatch import run_checkpatch

    solution = _lab(lab_id).solution
    files = sorted(p.relative_to(solution) for p in solution.glob("*.[ch]"))
    result = run_checkpatch(files, checkpatch_of_series, cwd=solution)
    # trace_printk() is what the ftrace lab teaches; checkpatch says it does not
    # belong in production code, and the README says so too.
    allowed = {"TRACE_PRINTK"} if lab_id == "ftrace" else set()
    findings = [f for f in result.findings if f.type not in allowed]
    assert findings == [], "\n".join(map(str, findings))
    if lab_id == "ftrace":
        assert [f.type for f in result.findings] == ["TRACE_PRINTK"]


@pytest.mark.kbuild
@pytest.mark.parametrize("series", KERNEL_SERIES)
@pytest.mark.parametrize("lab_id", LABS)
def test_skeleton_compiles(kernel_headers, series, lab_id, tmp_path):
    from dbgscaffold.kbuild import build
    from dbgscaffold.lab.project import write_project

    require_tools("make", "gcc")
    write_project(_lab(lab_id), tmp_path / "skel")
    result = build(tmp_path / "skel", kernel_headers[series].build_dir)
    assert result.ok and not result.errors, result.output


# ---------------------------------------------------------------- in the VM (slow)


@pytest.mark.slow
@pytest.mark.parametrize("lab_id", LABS)
def test_selfcheck(series, lab_id):
    t0 = time.monotonic()
    r = run_cli("lab", "selfcheck", lab_id, "--kernel", series, "--timeout", "180", "--check-timeout", "30", "--mutants")
    assert r.exception is None and r.exit_code == 0, r.output
    assert "selfcheck: no defects" in r.stdout and "DEFECT" not in r.stdout, r.stdout
    if lab_id == "relay":  # its planted bugs pass every check here (test_vm_debug_kernel catches them)
        assert "mutant leak: passes every check (no kmemleak here)" in r.stdout, r.stdout
    print(f"{lab_id} on {series}: selfcheck {time.monotonic() - t0:.1f} s")


# One edit of the solution each: a mistake a student could make, which a hidden
# check catches (most of them pass every visible check).
MUTANTS = {
    "relay": ("myrelay.c", {
        "buffer file mode hard-coded 0444": (
            [("debugfs_create_file(filename, mode,", "debugfs_create_file(filename, 0444,")],
            {"11-channel-mode.sh"}),
        "numbering restarts at every write": (
            [("\tmutex_lock(&myrelay_lock);\n\tif (!myrelay_chan) {", "\tmyrelay_seq = 0;\n\tmutex_lock(&myrelay_lock);\n\tif (!myrelay_chan) {")],
            {"21-sequence.sh", "31-dropped-exact.sh", "40-flush.sh", "41-flush-keeps.sh"}),
        "refuses for ever once full": (
            [("\tif (relay_buf_full(buf)) {", "\tif (myrelay_dropped || relay_buf_full(buf)) {")],
            {"31-dropped-exact.sh"}),
        "flush discards (relay_reset)": (
            [("\trelay_flush(myrelay_chan);", "\trelay_reset(myrelay_chan);")],
            {"40-flush.sh", "41-flush-keeps.sh"}),
    }),
    "kprobes": ("myprobes.c", {
        "forgets unregister_kprobe on exit": (  # the oops is this student's, in 15, not the next one's
            [("\tunregister_kprobe(&myprobes_kp);\n\t/* END TODO 1 */\n}", "\t/* END TODO 1 */\n}")],
            {"15-unregister.sh", "31-bad-symbol.sh"}),
        "hits writable": (
            [('debugfs_create_atomic_t("hits", 0444', 'debugfs_create_atomic_t("hits", 0644')],
            {"11-hits-only.sh"}),
        "keeps the first return value": (
            [("\tatomic64_set(&last_ret, (long)regs_return_value(regs));",
              "\tif (!atomic64_read(&last_ret))\n\t\tatomic64_set(&last_ret, (long)regs_return_value(regs));")],
            {"20-kretprobe.sh", "21-ret-value.sh"}),
        "files before the probes, not removed on failure": (
            [("\t/* TODO 1: register the kprobe */", '\tmyprobes_dir = debugfs_create_dir("myprobes", NULL);\n\t/* TODO 1: register the kprobe */'),
             ('\tmyprobes_dir = debugfs_create_dir("myprobes", NULL);\n\t/* TODO 1: the read-only', "\t/* TODO 1: the read-only")],
            {"31-bad-symbol.sh"}),
    }),
    "ftrace": ("mytrace.c", {
        "trace_printk in the caller's loop": (
            [('\ttrace_printk("mytrace: step %u of %u\\n", i, n);\n', ""),
             ("\t\tmytrace_step(i, n);\n", '\t{\n\t\tmytrace_step(i, n);\n\t\ttrace_printk("mytrace: step %u of %u\\n", i, n);\n\t}\n')],
            None),  # mytrace_step becomes trivial (10/11 may fail too); 21 must fail
        "does not wait for the work": ([("\tflush_work(&mytrace_work);\n", "")], {"31-kmem-sched.sh"}),
        "leaks the buffer": ([("\tkfree(buf);\n", "\t(void)buf;\n")], {"31-kmem-sched.sh"}),
    }),
}


def _mutant_failures(lab_id: str, series: str, tmp_path: Path) -> dict[str, set[str]]:
    from dbgscaffold.lab.engine import run_projects
    from dbgscaffold.lab.project import write_project

    lab = _lab(lab_id)
    source, mutants = MUTANTS[lab_id]
    projects = []
    for name, (edits, _) in mutants.items():
        dest = tmp_path / re.sub(r"\W+", "-", name)
        write_project(lab, dest, solution=True)
        text = (dest / source).read_text()
        for old, new in edits:
            assert old in text, (name, old)
            text = text.replace(old, new, 1)
        (dest / source).write_text(text)
        projects.append((name, dest))
    outcomes = run_projects(lab, projects, _pair(series), hidden=True, jobs=2, timeout=180, check_timeout=30)
    return {name: {c.file or c.name for c in o.score.checks if c.status not in ("pass", "skip")}
            for (name, _), o in zip(projects, outcomes)}


@pytest.mark.slow
@pytest.mark.parametrize("lab_id", LABS)
def test_hidden_checks_catch_plausible_wrong_solutions(series, lab_id, tmp_path):
    hidden = {c.name for c in _lab(lab_id).checks if c.hidden}
    failed = _mutant_failures(lab_id, series, tmp_path)
    for name, (_, expected) in MUTANTS[lab_id][1].items():
        assert failed[name] & hidden, (name, failed[name])
        if expected is not None:
            assert expected <= failed[name], (name, failed[name])
        else:
            assert "21-printk-where.sh" in failed[name], (name, failed[name])


# Task -> the tasks its checks build on (e.g. relay's records need the channel).
DEPENDS = {
    "relay": {2: {1}, 3: {1, 2}, 4: {1, 2}},
    "kprobes": {3: {1, 2}},
    "ftrace": {2: {1}},
}
_OPEN = re.compile(r"^\s*/\* TODO (\d+): .*\*/\s*$")
_CLOSE = re.compile(r"^\s*/\* END TODO (\d+) \*/\s*$")
_SKEL = re.compile(r"^(\s*)/\* skel: (.*\S) \*/\s*$")


def without_task(text: str, task: int) -> str:
    """The solution with only `task`'s regions made skeleton (the other markers stay, as comments)."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        opened, closed = _OPEN.match(line), _CLOSE.match(line)
        if opened and int(opened.group(1)) == task:
            inside = True
            out.append(line)
        elif closed and int(closed.group(1)) == task:
            inside = False
        elif inside:
            m = _SKEL.match(line)
            if m:
                out.append(m.group(1) + m.group(2) + "\n")
        else:
            out.append(line)
    return "".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("lab_id", LABS)
def test_each_task_alone_is_missed_and_only_it(series, lab_id, tmp_path):
    """The solution without task N's code: every check of task N fails; the checks
    of the tasks that do not build on N pass (a correct partial solution scores)."""
    from dbgscaffold.lab.engine import run_projects
    from dbgscaffold.lab.project import write_project

    lab = _lab(lab_id)
    projects = []
    for t in lab.tasks:
        dest = tmp_path / f"without-{t.number}"
        write_project(lab, dest, solution=True)
        for src in dest.glob("*.[ch]"):
            src.write_text(without_task(src.read_text(), t.number))
        projects.append((f"without task {t.number}", dest))
    outcomes = run_projects(lab, projects, _pair(series), hidden=True, jobs=2, timeout=180, check_timeout=30)
    for t, o in zip(lab.tasks, outcomes):
        for c in o.score.checks:
            label = (t.number, c.file or c.name, c.status, c.diagnostics[:4])
            if c.task == t.number:
                assert c.status not in ("pass", "skip"), label
            elif t.number not in DEPENDS[lab_id].get(c.task, set()):
                # kmemleak's check is a skip on Debian's kernels: they have none
                assert c.status == "pass" or (c.name, c.status) == ("no memory leaked", "skip"), label


@pytest.mark.slow
def test_guest_has_what_the_ftrace_readme_says(series):
    """available_tracers and the event systems the README lists (and the checks use)."""
    from dbgscaffold.runner.execute import Prepared, RunOptions, RunRequest, run
    from dbgscaffold.vm.agent import PAYLOAD_SCRIPT, pack_payload
    from dbgscaffold.vm.initramfs import FileSpec

    script = "\n".join([
        ". /checks/ktap.sh", "_dbgs_res 'KTAP version 1'", "_dbgs_res '1..1'",
        "mount -t tracefs nodev /sys/kernel/tracing",
        'diag "tracers: $(cat /sys/kernel/tracing/available_tracers)"',
        'for s in ' + " ".join(GUEST_EVENT_SYSTEMS) + '; do [ -d /sys/kernel/tracing/events/$s ] && diag "events: $s"; done',
        "ok tracefs", ""])
    payload = pack_payload([FileSpec(PAYLOAD_SCRIPT, script.encode(), 0o755)])

    class Script:  # the runner's Checks: nothing to build, one script to run
        def prepare(self, project, pair, workdir, check_timeout):
            return Prepared("tracefs", ("tracefs",), payload, 0.0, 0.0)

    outcome = run([RunRequest("tracefs", Path("."), Script())], _pair(series), RunOptions(timeout=120, jobs=1))[0][0]
    diags = outcome.checks[0].diagnostics
    tracers = next(d for d in diags if d.startswith("tracers: ")).split()[1:]
    assert set(tracers) == GUEST_TRACERS, tracers
    assert [d.split()[1] for d in diags if d.startswith("events: ")] == list(GUEST_EVENT_SYSTEMS)


@pytest.mark.slow
def test_grade_charges_a_leaked_kprobe_to_its_student(series, tmp_path):
    """A submission that leaves its kprobe registered after rmmod oopses in its own
    check 15, not in the next student's run (same VM, graded one after the other)."""
    import csv

    from dbgscaffold.lab.project import write_project

    lab = _lab("kprobes")
    subs = tmp_path / "subs"
    write_project(lab, subs / "a-leaks", solution=True)
    c = subs / "a-leaks" / "myprobes.c"
    text = c.read_text()
    leaky = text.replace("\tunregister_kprobe(&myprobes_kp);\n\t/* END TODO 1 */\n}", "\t/* END TODO 1 */\n}", 1)
    assert leaky != text
    c.write_text(leaky)
    write_project(lab, subs / "b-correct", solution=True)
    out = tmp_path / "grades.csv"
    r = run_cli("lab", "grade", str(subs), "--lab", "kprobes", "--kernel", series, "--out", str(out), "-j", "1", "--timeout", "180")
    assert r.exception is None and r.exit_code == 0, r.output
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert float(rows["b-correct"]["total"]) == float(rows["b-correct"]["max"]), rows["b-correct"]
    verdict = rows["a-leaks"]["verdict"]
    assert verdict.startswith("crash:") and "rmmod leaves no probe behind" in verdict, rows["a-leaks"]
