"""`dbgscaffold test`: build, hand to the guest agent, judge; one module or a batch.

build_module() runs kbuild in the project's cached build tree (the project
directory stays as it was) and returns the stripped .ko; prepare() packs it
with its checks (checks.py) into a payload; run_batch() starts `jobs` agent
VMs (session.py: restored from a snapshot or booted, while kbuild compiles)
and feeds them the payloads one after another; judge() turns each payload's
KTAP, console slice and taint into a TestRun with a verdict.

Pure: judge(). Edges: build_module(), prepare(), run_batch(), run_module_test().
"""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import EXIT_BUILD, EXIT_CHECKS_FAILED, EXIT_CRASH, EXIT_OK, EXIT_TIMEOUT, UserError
from ..kbuild import BuildResult, incremental_build, kernel_name_clashes, source_files
from . import checks as checks_mod
from . import crash, ktap
from .agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT, agent_initramfs, pack_payload
from .images import KernelPair, boot_image
from .initramfs import FileSpec
from .qemu import AccelChoice, Machine, RunResult, fast_machine, probe_accel
from .session import AgentVM, PayloadRun
from .snapshot import SnapshotStore

_UPTIME = re.compile(r"^uptime: ([\d.]+) ([\d.]+)$")
_TAINT_CHANGE = re.compile(r"^taint: (\d+) -> (\d+)$")
_TAINT = re.compile(r"^taint: (\d+)$")


class BuildFailed(UserError):
    exit_code = EXIT_BUILD

    def __init__(self, release: str, result: BuildResult, project: Path | None = None):
        self.result = result
        shown = result.errors or result.diagnostics
        lines = [str(d) for d in shown] or result.output.strip().splitlines()[-20:]
        self.notes = kernel_name_clashes(result.output, project) if project is not None else []
        lines += [f"note: {n}" for n in self.notes]
        super().__init__(f"error: the build against {release} failed:\n" + "\n".join(f"  {x}" for x in lines))


@dataclass(frozen=True)
class BuiltModule:
    ko: Path  # stripped, in a scratch directory the caller owns
    name: str  # module name (the .ko's stem)
    result: BuildResult


@dataclass(frozen=True)
class CheckResult:
    number: int
    name: str
    status: str  # pass, fail, skip, crashed, timeout, ...
    diagnostics: tuple[str, ...] = ()
    seconds: float | None = None
    crash: crash.CrashReport | None = None
    taint_before: int | None = None
    taint_after: int | None = None

    @property
    def failed(self) -> bool:
        return self.status not in ("pass", "skip", "todo", "xfail")


@dataclass(frozen=True)
class TestRun:
    module: str
    release: str
    accel: str
    accel_reason: str
    image_kind: str
    checks: tuple[CheckResult, ...]
    crashes: tuple[crash.CrashReport, ...]
    taint: crash.Taint | None
    ended: str  # qemu.ended_how(): poweroff, panic, timeout, ...
    timed_out: bool
    boot_seconds: float | None
    wall_seconds: float  # the QEMU run
    build_seconds: float
    pack_seconds: float
    console: str
    results: str
    exit_code: int
    verdict: str  # one line: "pass", "3 checks failed", "crash: ...", "timeout ..."
    warnings: tuple[str, ...] = ()
    argv: tuple[str, ...] = field(default=(), compare=False)
    boot: str = ""  # "snapshot" (a saved guest restored) or "fresh"
    boot_note: str = ""  # what happened to the snapshot

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out


# ---------------------------------------------------------------- build (edge)


def load_project_spec(project: Path):
    """The spec of a generated project (its dbgscaffold.toml), or a message saying what to do."""
    from ..render import SPEC_FILE
    from ..spec import load_spec

    path = Path(project) / SPEC_FILE
    if not Path(project).is_dir():
        raise UserError(f"{project}: error: no such directory. Fix: pass the module's directory.")
    if not path.is_file():
        raise UserError(f"{path}: error: no spec here; dbgscaffold test derives its checks from it. Fix: pass a directory made by 'dbgscaffold new'.")
    return load_spec(path)


def build_module(project: Path, kdir: Path, release: str, out_dir: Path, strip: bool = True) -> BuiltModule:
    """kbuild in the project's cached build tree for `kdir` (kbuild.incremental_build:
    unchanged sources make a no-op); the (stripped) .ko lands in out_dir.
    Raises BuildFailed (exit 3) with the compiler's messages, naming the user's files."""
    project = Path(project).resolve()
    if not source_files(project) or not (project / "Kbuild").is_file() and not (project / "Makefile").is_file():
        raise UserError(f"{project}: error: not a module project (no C sources and Kbuild). Fix: run 'dbgscaffold new NAME' or pass its directory.")
    with incremental_build(project, kdir) as (copy, result):
        if not result.ok:
            raise BuildFailed(release, result, project)
        kos = sorted(copy.glob("*.ko"))
        if len(kos) != 1:
            raise BuildFailed(release, result, project) if not kos else UserError(f"{project}: error: the build made {len(kos)} modules; dbgscaffold test handles one.")
        out_dir.mkdir(parents=True, exist_ok=True)
        target = Path(out_dir) / kos[0].name
        if strip and shutil.which("strip"):
            subprocess.run(["strip", "--strip-debug", "-o", str(target), str(kos[0])], check=True, capture_output=True, timeout=60)
        else:
            shutil.copy2(kos[0], target)
    return BuiltModule(target, target.stem, result)


# ---------------------------------------------------------------- judging (pure)


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
        if d.startswith("Subtest: "):
            continue
        m = _UPTIME.match(d)
        if m:
            seconds = max(0.0, float(m.group(2)) - float(m.group(1)))
            continue
        m = _TAINT_CHANGE.match(d)
        if m:
            before, after = int(m.group(1)), int(m.group(2))
        shown.append(d)
    return seconds, before, after, tuple(shown)


def judge(module: str, names: list[str], r: RunResult, release: str = "", accel: str = "", accel_reason: str = "",
          image_kind: str = "", build_seconds: float = 0.0, pack_seconds: float = 0.0, boot: str = "",
          boot_note: str = "") -> TestRun:
    """The verdict of one run: 5 timeout/hang, 6 crash or failing taint, 1 failed checks, 0 pass."""
    doc = ktap.parse(r.results)
    reports = tuple(crash.classify(r.console))
    by_check: dict[int, crash.CrashReport] = {}
    for rep in reports:
        if rep.check and rep.check.isdigit():
            by_check.setdefault(int(rep.check), rep)
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
    for n, name in enumerate(names, 1):
        t = doc.test(n)
        if t is None or t.ok is None:  # planned, but its result never arrived
            if stopped is not None and n > stopped:
                results.append(CheckResult(n, name, "not run", (f"the guest stopped after check {stopped}",)))
                continue
            if r.timed_out and not by_check.get(n):
                if hung is None:
                    hung = n
                    results.append(CheckResult(n, name, "timeout", ("no result before the run's timeout: this check hung",)))
                else:
                    results.append(CheckResult(n, name, "not run", (f"the guest hung in check {hung}",)))
                continue
            results.append(CheckResult(n, name, "crashed", ("no result arrived",), crash=by_check.get(n)))
            continue
        seconds, before, after, diags = _per_check(t)
        status = t.status
        rep = by_check.get(n)
        if after is not None and crash.decode_taint(after).failed and not crash.decode_taint(before or 0).failed and status == "pass":
            status = "fail"
            diags += (f"the kernel was tainted {crash.decode_taint(after).letters} during this check",)
        if rep is not None and rep.fatal and status in ("pass", "fail"):
            status = "crashed"
        results.append(CheckResult(n, name, status, diags, seconds, rep, before, after))
        if after is not None:
            final_taint = after
    taint = crash.decode_taint(final_taint) if final_taint is not None else None
    failed = [c for c in results if c.failed]
    # A crash explains a later hang (an oops leaves locks held): it comes first.
    crashed = bool(reports) or (taint is not None and taint.failed) or r.ended == "panic"
    stuck = next((c for c in results if c.status == "timeout"), None)
    if r.timed_out and not crashed:
        code = EXIT_TIMEOUT
        verdict = f"timeout: no result within the run's limit ({r.wall_seconds:.0f} s)" + (f"; stuck in check {stuck.number} '{stuck.name}'" if stuck else "")
    elif stuck is not None and not crashed:  # the guest's own per-check limit
        code = EXIT_TIMEOUT
        verdict = f"timeout: check {stuck.number} '{stuck.name}' exceeded its time limit"
    elif crashed or any(c.status == "crashed" for c in results):
        code = EXIT_CRASH
        if reports:
            first = reports[0]
            where = f" in check {first.check} '{names[int(first.check) - 1]}'" if first.check and first.check.isdigit() and int(first.check) <= len(names) else ""
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
        argv=r.argv, boot=boot, boot_note=boot_note,
    )


# ---------------------------------------------------------------- the whole cycle (edge)


@dataclass(frozen=True)
class Prepared:
    """A built module and the payload the guest agent runs for it."""

    module: str
    names: tuple[str, ...]  # the planned checks, in order
    payload: bytes
    build_seconds: float
    pack_seconds: float


def prepare(project: Path, pair: KernelPair, spec, workdir: Path, stress_seconds: float = 0.0,
            check_timeout: float | None = None) -> Prepared:
    """kbuild `project` for `pair` and pack its .ko, checks and tests/*.sh as a payload."""
    t0 = time.monotonic()
    built = build_module(project, pair.build_dir, pair.release, workdir)
    build_seconds = time.monotonic() - t0
    t0 = time.monotonic()
    ko_guest = f"{PAYLOAD_ROOT}/{built.ko.name}"
    users = checks_mod.user_checks(project)
    user_guest = tuple(f"{PAYLOAD_ROOT}/user/{p.name}" for p in users)
    plan = checks_mod.plan(spec, pair.version, ko_guest, user_guest, stress_seconds)
    script = checks_mod.script(spec, pair.version, ko_guest, user_guest, stress_seconds, check_timeout)
    payload = pack_payload([
        FileSpec.from_path(ko_guest, built.ko, 0o644),
        FileSpec(PAYLOAD_SCRIPT, script.encode(), 0o755),
        *(FileSpec.from_path(g, p, 0o755) for g, p in zip(user_guest, users)),
    ])
    return Prepared(spec.module.name, tuple(c.name for c in plan), payload, build_seconds, time.monotonic() - t0)


@dataclass(frozen=True)
class GuestSetup:
    """What every VM of one kernel shares: the machine, and why this accelerator."""

    machine: Machine
    accel: AccelChoice
    image_kind: str


def machine_for(pair: KernelPair, accel: str = "auto", guest_files: Sequence[FileSpec] = ()) -> GuestSetup:
    """The agent VM for `pair`; `guest_files` are baked into its initramfs (big, shared
    files such as staprun and its libraries: the UART moves only ~30 KB/s)."""
    choice = probe_accel(accel)
    image = boot_image(pair.image, pair.release)
    initrd = agent_initramfs(FileSpec(checks_mod.GUEST_LIB, checks_mod.guest_library().encode(), 0o644), guest_files)
    return GuestSetup(fast_machine(image.path, initrd, accel=choice.accel), choice, image.kind)


def _build_failed(module: str, release: str, exc: UserError) -> TestRun:
    first = str(exc).strip().splitlines()
    return TestRun(
        module=module, release=release, accel="", accel_reason="", image_kind="", checks=(), crashes=(), taint=None,
        ended="not started", timed_out=False, boot_seconds=None, wall_seconds=0.0, build_seconds=0.0, pack_seconds=0.0,
        console="", results="", exit_code=exc.exit_code, verdict=f"build failed: {first[0] if first else exc}",
        warnings=tuple(first[1:]),
    )


def _dirty(pr: PayloadRun) -> bool:
    """Can the next module use this guest? Not after a death, a module left
    loaded (the next insmod of the same name would fail) or a failing taint."""
    return pr.done is None or pr.done.modules_loaded > 0 or crash.decode_taint(pr.done.taint).failed


def run_batch(projects: list[Path], pair: KernelPair, timeout: float = 60.0, accel: str = "auto",
              keep_logs: Path | None = None, specs: list | None = None, stress_seconds: float = 0.0,
              check_timeout: float | None = None, jobs: int = 2, snapshot: bool | SnapshotStore = True,
              on_line: Callable[[int, str], None] | None = None) -> list[TestRun]:
    """Test every generated project on `pair` (see run_prepared)."""
    projects = [Path(p).resolve() for p in projects]
    specs = specs if specs is not None else [load_project_spec(p) for p in projects]
    items = [
        WorkItem(s.module.name, lambda workdir, p=p, s=s: prepare(p, pair, s, workdir, stress_seconds, check_timeout))
        for p, s in zip(projects, specs)
    ]
    return run_prepared(items, pair, timeout, accel, keep_logs, jobs, snapshot, on_line)


@dataclass(frozen=True)
class WorkItem:
    """One module to run: a name (for logs and build failures) and how to make
    its payload (called in a build thread with a scratch directory)."""

    name: str
    prepare: Callable[[Path], Prepared]


def run_prepared(items: list[WorkItem], pair: KernelPair, timeout: float = 60.0, accel: str = "auto",
                 keep_logs: Path | None = None, jobs: int = 2, snapshot: bool | SnapshotStore = True,
                 on_line: Callable[[int, str], None] | None = None,
                 guest_files: Sequence[FileSpec] = ()) -> list[TestRun]:
    """Run every item on `pair` in as few boots as possible: `jobs` VMs side by
    side, each running one module after another; a VM is started (restored from
    the snapshot, or booted) while kbuild compiles, and replaced after a module
    that crashed it, tainted it or stayed loaded: that costs that module only.
    A build failure (UserError from prepare) is that item's result (exit 3),
    except with a single item, where it is raised (the CLI shows the compiler's
    messages). Results come back in the items' order."""
    vm_setup = machine_for(pair, accel, guest_files)
    store = snapshot if isinstance(snapshot, SnapshotStore) else SnapshotStore() if snapshot else None
    jobs = max(1, min(jobs, len(items)))
    results: list[TestRun | None] = [None] * len(items)
    failures: list[BaseException] = []
    work: queue.Queue = queue.Queue()
    for i in range(len(items)):
        work.put(i)

    def logs(i: int) -> Path | None:
        if keep_logs is None:
            return None
        return keep_logs / f"{i + 1:03d}-{items[i].name}" if len(items) > 1 else keep_logs

    with tempfile.TemporaryDirectory(prefix="dbgscaffold-test-") as tmp, ThreadPoolExecutor(max_workers=jobs) as builder:
        built = [builder.submit(item.prepare, Path(tmp) / str(i)) for i, item in enumerate(items)]
        def worker(number: int) -> None:
            vm = None
            try:
                while not failures:
                    try:
                        i = work.get_nowait()
                    except queue.Empty:
                        return
                    if vm is None:  # boots while the build of module i is still running
                        vm = AgentVM(vm_setup.machine, store, save_snapshot=number == 0)
                        vm.start(timeout)
                    try:
                        prep = built[i].result()
                    except UserError as exc:
                        if len(items) == 1:
                            raise
                        results[i] = _build_failed(items[i].name, pair.release, exc)
                        continue
                    vm.workdir = logs(i)
                    pr = vm.run(prep.payload, timeout, (lambda line, i=i: on_line(i, line)) if on_line else None)
                    results[i] = judge(prep.module, list(prep.names), pr.result, pair.release, vm_setup.accel.accel,
                                       vm_setup.accel.reason, vm_setup.image_kind, prep.build_seconds, prep.pack_seconds,
                                       boot=pr.boot.kind, boot_note=pr.boot.note)
                    if _dirty(pr):
                        vm.finish()
                        vm = None
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                failures.append(exc)
            finally:
                if vm is not None:
                    vm.finish()

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(jobs)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.2)  # stays responsive to ^C
        except BaseException:
            failures.append(KeyboardInterrupt())
            for t in threads:
                t.join(timeout=15)
            raise
        if failures:
            raise failures[0]
    return [r for r in results if r is not None]


def run_module_test(project: Path, pair: KernelPair, timeout: float = 60.0, accel: str = "auto",
                    keep_logs: Path | None = None, spec=None, stress_seconds: float = 0.0,
                    check_timeout: float | None = None, snapshot: bool | SnapshotStore = True,
                    on_line: Callable[[str], None] | None = None) -> TestRun:
    """Build, boot (or restore) and judge one project on `pair`. Build failures raise BuildFailed."""
    return run_batch([project], pair, timeout, accel, keep_logs, [spec] if spec is not None else None,
                     stress_seconds, check_timeout, jobs=1, snapshot=snapshot,
                     on_line=(lambda _i, line: on_line(line)) if on_line else None)[0]
