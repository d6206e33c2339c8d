"""A lab run: the payload (task-0 load/unload around the lab's checks), the
scores of a TestRun per task, and where a crash happened in the student's code.

Pure: plan(), run_script(), score(), locate_crash() (from the frames the runner decoded).
Edge: LabChecks.prepare() (kbuild, strip).
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import EXIT_OK, UserError
from ..kbuild import BuildResult, build_inputs
from ..runner import checks as checks_mod
from ..runner.build import BuildFailed, Built, BuiltModule, build_modules
from ..runner.execute import Prepared
from ..runner.model import BuildFailure, CheckResult, Status, TestRun
from ..untrusted_build import Untrusted
from ..vm.agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT, pack_payload
from ..vm.initramfs import FileSpec
from .manifest import CHECK_LIB, Lab
from .skeleton import TodoRegion, todo_at

DEBUGFS = checks_mod.DEBUGFS
_BEFORE = "/tmp/.dbgs-debugfs-before"
GUEST_CHECKS = f"{PAYLOAD_ROOT}/checks"
GUEST_CHECK_LIB = f"{GUEST_CHECKS}/{CHECK_LIB}"  # ktap.sh's run_user_check sources $DBGS_CHECK_LIB before each check
GUEST_PROJECT = f"{PAYLOAD_ROOT}/project"  # $PROJECT: the student's [lab] student_files


@dataclass(frozen=True)
class PlannedCheck:
    """One top-level result of a lab run and the task it scores."""

    name: str
    task: int
    hidden: bool = False
    file: str = ""  # the check's file name; "" for the runner's own task-0 checks
    guest: str = ""  # its path in the guest
    body: str = ""  # shell body of a runner check


def _q(text: str) -> str:
    return shlex.quote(text)


def plan(lab: Lab, hidden: bool) -> list[PlannedCheck]:
    """insmod (task 0), the lab's checks sorted by file name, rmmod, "nothing left" and
    "no memory leaked" (task 0)."""
    ko, name = f"{PAYLOAD_ROOT}/{lab.module}.ko", lab.module
    root = f"{DEBUGFS}/{lab.debugfs_root}" if lab.debugfs_root else ""
    out = [PlannedCheck(f"insmod {name}", 0, body=(
        f"dbgs_leaks_reset; ls -A {DEBUGFS} > {_BEFORE}; insmod {_q(ko)} 2>/tmp/.err || {{ diag \"insmod: $(cat /tmp/.err)\"; exit 1; }}"))]
    for c in lab.run_checks(hidden):
        title = f"task {c.task}: {c.title}" if c.task else c.title
        out.append(PlannedCheck(title, c.task, c.hidden, c.name, f"{GUEST_CHECKS}/{c.name}"))
    out.append(PlannedCheck(f"rmmod {name}", 0, body=(
        f"rmmod {_q(name)} 2>/tmp/.err || {{ diag \"rmmod: $(cat /tmp/.err)\"; exit 1; }}")))
    gone = f"[ ! -e {_q(root)} ] || {{ diag '{root} is still there after rmmod: remove the tree in the exit function'; exit 1; }}; " if root else ""
    out.append(PlannedCheck("nothing is left in debugfs after rmmod", 0, body=(
        gone + f"ls -A {DEBUGFS} > /tmp/.dbgs-after; cmp -s {_BEFORE} /tmp/.dbgs-after || "
        f"{{ diag \"left behind in {DEBUGFS}: $(grep -vxF -f {_BEFORE} /tmp/.dbgs-after | tr '\\n' ' ')\"; exit 1; }}")))
    # kmemleak's verdict (a skip on a kernel without it): the plan is the same on every kernel
    out.append(PlannedCheck(checks_mod.LEAK_CHECK.name, 0, body=checks_mod.LEAK_CHECK.body))
    return out


def lab_plan(lab: Lab, hidden: bool) -> list[PlannedCheck]:
    """The plan of a run: plan() for a module lab; a kind's helper may define its own
    `plan(lab, hidden)` (its prepare() must then pack the checks in that order)."""
    if lab.kind != "module":
        helper = _kind_helper(lab)
        if hasattr(helper, "plan"):
            return list(helper.plan(lab, hidden))
    return plan(lab, hidden)


def lab_guest_files(lab: Lab, pair) -> list[FileSpec]:
    """Files every run of the lab shares, baked into the agent initramfs
    (runner.run_prepared(guest_files=)) instead of sent in each payload: a kind's
    helper may define `guest_files(pair)`; destinations lie outside
    agent.PAYLOAD_ROOT. None for a module lab."""
    if lab.kind != "module":
        helper = _kind_helper(lab)
        if hasattr(helper, "guest_files"):
            return list(helper.guest_files(pair))
    return []


def run_script(lab: Lab, checks: list[PlannedCheck], series: str, check_timeout: float | None = None) -> str:
    """The payload's run.sh (checks.render_script(): same library, KTAP on fd 3), with
    $SERIES for lessons that differ by kernel, $PROJECT where the student_files are,
    and the lab's checks/lib.sh, if any, sourced before each check. A module or file
    left behind keeps the module loaded at the end, so the runner replaces the VM
    before the next student."""
    ko = f"{PAYLOAD_ROOT}/{lab.module}.ko"
    root = f"{DEBUGFS}/{lab.debugfs_root}" if lab.debugfs_root else ""
    variables = {"MODULE": lab.module, "ROOT": root, "KO": ko, "SERIES": series}
    if lab.student_files:
        variables["PROJECT"] = GUEST_PROJECT
    if lab.check_lib is not None:
        variables["DBGS_CHECK_LIB"] = GUEST_CHECK_LIB
    return checks_mod.render_script(
        "one lab submission's checks on one kernel", variables,
        [(c.name, c.body, c.guest) for c in checks], check_timeout,
        epilogue=(f"ls -A {DEBUGFS} | cmp -s {_BEFORE} - || insmod {_q(ko)} 2>/dev/null",),
    )


def series_of(version: tuple[int, ...]) -> str:
    return ".".join(str(v) for v in version[:2])


# ---------------------------------------------------------------- building (edge)


def source_digest(project: Path) -> str:
    h = hashlib.sha256()
    for rel in sorted(build_inputs(project)):
        h.update(str(rel).encode() + b"\0" + (project / rel).read_bytes() + b"\0")
    return h.hexdigest()[:20]


def lab_kbuild(lab: Lab) -> str:
    """The lab's own Kbuild: what builds a submission we do not trust, not the submission's."""
    return (lab.solution / "Kbuild").read_text(encoding="utf-8")


def build_lab_module(lab: Lab, project: Path, pair, workdir: Path, cache: Path | None = None,
                     untrusted: Untrusted | None = None) -> Built:
    """kbuild the student's project: exactly the lab's module (BuildFailed otherwise).
    With `cache` (a directory), identical sources are built once (keyed by their bytes).
    With `untrusted`: a copy with the lab's Kbuild, in the sandbox unless --no-sandbox."""
    key = cache / f"{source_digest(project)}-{pair.release}" if cache is not None else None
    if key is not None and (key / "done").is_file():
        workdir.mkdir(parents=True, exist_ok=True)
        ko = workdir / f"{lab.module}.ko"
        shutil.copy2(key / ko.name, ko)
        return Built((BuiltModule(lab.module, ko, key / "debug" / ko.name, ()),), 0.0, BuildResult(0, "cached", 0.0))
    how = replace(untrusted, kbuild=lab_kbuild(lab)) if untrusted is not None else None
    built = build_modules(project, pair.build_dir, pair.release, workdir, untrusted=how)
    made = built.module(lab.module)
    if made is None or len(built.modules) != 1:
        names = ", ".join(f"{m.name}.ko" for m in built.modules)
        raise BuildFailed(BuildFailure(pair.release, Path(project), f"the build made {names}; the lab expects {lab.module}.ko",
                                       lines=(f"{project}: error: the build made {names}; the lab expects {lab.module}.ko only. "
                                              f"Fix: obj-m := {lab.module}.o in Kbuild.",)))
    if key is not None:  # atomically: another build thread may be reading it
        tmp = Path(tempfile.mkdtemp(prefix=".", dir=cache))
        (tmp / "debug").mkdir()
        shutil.copy2(made.ko, tmp / made.ko.name)
        shutil.copy2(made.debug_ko, tmp / "debug" / made.ko.name)
        (tmp / "done").touch()
        try:
            tmp.rename(key)
        except OSError:  # the same sources built twice at once: keep the first
            shutil.rmtree(tmp, ignore_errors=True)
    return built


@dataclass(frozen=True)
class LabChecks:
    """The runner's Checks for a lab project: the lab's module built, its plan and payload."""

    lab: Lab
    hidden: bool
    cache: Path | None = None  # identical sources are built once
    untrusted: Untrusted | None = None  # how to build code we do not trust (lab grade, --untrusted)

    def prepare(self, project: Path, pair, workdir: Path, check_timeout: float | None) -> Prepared:
        lab = self.lab
        if lab.kind != "module":
            helper = _kind_helper(lab)
            if not hasattr(helper, "prepare"):
                raise UserError(f"{lab.root / 'lab.toml'}: error: lab {lab.id!r} is of kind {lab.kind!r}, but dbgscaffold.lab.{lab.kind} "
                                "has no prepare(lab, project, pair, workdir, hidden, check_timeout) yet. Fix: finish that helper (docs/labs-format.md).")
            return helper.prepare(lab, project, pair, workdir, self.hidden, check_timeout, untrusted=self.untrusted)
        t0 = time.monotonic()
        built = build_lab_module(lab, Path(project), pair, workdir, self.cache, self.untrusted)
        build_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        checks = plan(lab, self.hidden)
        script = run_script(lab, checks, series_of(pair.version), check_timeout)
        files = payload_files(lab, built.modules[0].ko, script, self.hidden, Path(project))
        return Prepared(lab.module, tuple(c.name for c in checks), pack_payload(files), build_seconds, time.monotonic() - t0, built)


def payload_files(lab: Lab, ko: Path, script: str, hidden: bool, project: Path) -> list[FileSpec]:
    """The .ko, run.sh, the run's checks, the lab's checks/lib.sh and the project's
    student_files (for agent.pack_payload()). A student file missing from the project is
    left out: the checks that run it say so and fail (the module's checks still score)."""
    files = [FileSpec.from_path(f"{PAYLOAD_ROOT}/{lab.module}.ko", ko, 0o644), FileSpec(PAYLOAD_SCRIPT, script.encode(), 0o755)]
    for c in lab.run_checks(hidden):
        files.append(FileSpec.from_path(f"{GUEST_CHECKS}/{c.name}", c.path, 0o755))
    if lab.check_lib is not None:
        files.append(FileSpec.from_path(GUEST_CHECK_LIB, lab.check_lib, 0o644))
    for name in lab.student_files:
        if (project / name).is_file():
            files.append(FileSpec.from_path(f"{GUEST_PROJECT}/{name}", project / name, 0o755))
    return files


def _kind_helper(lab: Lab):
    """The module handling a lab kind other than "module" (imported only when needed)."""
    import importlib

    try:
        return importlib.import_module(f"{__package__}.{lab.kind}")
    except ModuleNotFoundError as exc:
        raise UserError(f"{lab.root / 'lab.toml'}: error: lab {lab.id!r} is of kind {lab.kind!r}, handled by "
                        f"dbgscaffold.lab.{lab.kind}, which is not installed ({exc}). Fix: update dbgscaffold.") from None


# ---------------------------------------------------------------- scoring (pure)


@dataclass(frozen=True)
class TaskScore:
    number: int
    title: str
    points: float
    max_points: float
    passed: int
    total: int


@dataclass(frozen=True)
class CheckOutcome:
    number: int
    name: str
    task: int
    hidden: bool
    status: Status
    diagnostics: tuple[str, ...] = ()
    file: str = ""  # the lab's check file ("" for task 0's own checks)


@dataclass(frozen=True)
class Score:
    tasks: tuple[TaskScore, ...]
    checks: tuple[CheckOutcome, ...]
    verdict: str
    exit_code: int
    where: str = ""  # a crash's file:line and TODO region

    @property
    def total(self) -> float:
        return round(sum(t.points for t in self.tasks), 2)

    @property
    def max_points(self) -> float:
        return round(sum(t.max_points for t in self.tasks), 2)


def _task_list(lab: Lab) -> list[tuple[int, str, float]]:
    return [(0, "the module builds, loads and unloads", lab.load_points), *((t.number, t.title, t.points) for t in lab.tasks)]


def score(lab: Lab, checks: list[PlannedCheck], run: TestRun, where: str = "") -> Score:
    """A TestRun (or a build failure: run.checks empty) -> points per task."""
    results: dict[int, CheckResult] = {c.number: c for c in run.checks}
    outcomes = []
    for n, c in enumerate(checks, 1):
        r = results.get(n)
        status = r.status if r is not None else (Status.BUILD_FAILED if run.build_failure is not None else Status.NOT_RUN)
        outcomes.append(CheckOutcome(n, c.name, c.task, c.hidden, status, tuple(r.diagnostics) if r else (), c.file))
    tasks = []
    for number, title, points in _task_list(lab):
        mine = [o for o in outcomes if o.task == number]
        passed = sum(o.status.ok for o in mine)
        if not mine:  # e.g. task 0 of a kind whose plan has no load/unload checks: nothing to earn
            points = 0.0
        got = round(points * passed / len(mine), 2) if mine else 0.0
        tasks.append(TaskScore(number, title, got, points, passed, len(mine)))
    verdict = run.verdict + (f" at {where}" if where else "")
    return Score(tuple(tasks), tuple(outcomes), verdict, run.exit_code, where)


# ---------------------------------------------------------------- crashes -> source lines


@dataclass(frozen=True)
class SourceLocation:
    file: str  # relative to the project
    line: int
    function: str
    region: TodoRegion | None

    def __str__(self) -> str:
        todo = f", in TODO {self.region.task} ({self.region.text}) at line {self.region.start}" if self.region else ""
        return f"{self.file}:{self.line} ({self.function}{todo})"


def locate_crash(run: TestRun, project: Path) -> SourceLocation | None:
    """The student's FILE:LINE of the crash charged to their module (the runner decoded
    its frames), with the TODO it falls in: the faulting line, else the first sure frame."""
    report = first_crash(run)
    if report is None or not report.function:
        return None
    frames = run.frames[run.crashes.index(report)] if len(run.frames) == len(run.crashes) else ()
    decoded = [f for f in frames if f.ours and f.reliable]
    frame = next((f for f in decoded if f.exact), decoded[0] if decoded else None)
    if frame is None:
        return None
    source = Path(project) / frame.file
    region = todo_at(source.read_text(errors="replace"), frame.line) if source.is_file() else None
    return SourceLocation(frame.file, frame.line, frame.function, region)


def first_crash(run):
    """The crash report charged to this run's module, if any."""
    return next((r for r in run.crashes if r.function), run.crashes[0] if run.crashes else None)


__all__ = ["EXIT_OK", "LabChecks", "PlannedCheck", "Score", "TaskScore", "plan", "run_script", "score", "locate_crash"]
