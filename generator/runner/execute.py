"""Run requests in the test VM: build each project while the VM starts, send its payload, judge it.

    results = run([RunRequest(name, project, checks), ...], pair, RunOptions(jobs=2))

A RunRequest says what to build (its project) and which checks to run (its
`checks`, which builds the project and packs the payload: runner.project for
`dbgscaffold test`, the lab package for labs); the kernel is `pair`. `jobs` agent
VMs (vm.session: restored from a snapshot or booted while kbuild compiles) take the
payloads one after another; judge() turns each into a TestRun. A VM is replaced
after a module that crashed it, tainted it or stayed loaded: that costs that
module only. Every request gets exactly one TestRun, in order: a build failure
is a TestRun holding its BuildFailure (exit 3), never an exception.

Edges: machine_for(), run().
"""

from __future__ import annotations

import queue
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..errors import EXIT_CHECKS_FAILED, UserError
from ..procs import stopping
from ..vm import crash, images, qemu
from ..vm.agent import agent_initramfs
from ..vm.images import KernelPair, boot_image
from ..vm.initramfs import FileSpec
from ..vm.qemu import AccelChoice, Machine, fast_machine, probe_accel
from ..vm.session import AgentVM, GuestDidNotStart, PayloadRun
from ..vm.snapshot import SnapshotStore
from . import leaks
from .build import BuildFailed, Built
from .checks import LEAK_CHECK, warm_up_payload
from .checks import guest_files as check_files
from .decode import decode, decode_kernel, has_line_tables, kernel_frames, module_frames, name_entries
from .detectors import config_of, detectors, slowdown
from .judge import judge
from .model import BuildFailure, Status, TestRun


@dataclass(frozen=True)
class Prepared:
    """A request's payload: what the guest agent runs, and what the report needs afterwards."""

    module: str
    names: tuple[str, ...]  # the planned checks, in order
    payload: bytes
    build_seconds: float
    pack_seconds: float
    built: Built | None = None  # the modules (unstripped .ko for decoding a crash), when kbuild made them
    c_names: tuple[tuple[str, str], ...] = ()  # a generated module's (C name, spec entry): Spec.c_names()


class Checks(Protocol):
    """Builds a project for a kernel and packs its checks (called in a build thread);
    raises BuildFailed (or another UserError) when there is nothing to run."""

    def prepare(self, project: Path, pair: KernelPair, workdir: Path, check_timeout: float | None) -> Prepared: ...


@dataclass(frozen=True)
class RunRequest:
    """One project to run: what to build, and which checks (which also say which modules load)."""

    name: str  # for logs and a build failure's report
    project: Path
    checks: Checks
    timeout: float | None = None  # the project's own limit for its run (e.g. [test] timeout)


@dataclass(frozen=True)
class RunOptions:
    timeout: float = 60.0  # seconds for one request's run in the VM
    check_timeout: float | None = None  # seconds for one check, in the guest
    accel: str = "auto"
    jobs: int = 2  # VMs side by side
    snapshot: bool | SnapshotStore = True  # restore (and save) the booted guest
    keep_logs: Path | None = None
    guest_files: Sequence[FileSpec] = ()  # baked into the agent initramfs (big files every run shares)
    sanitize: bool = False  # boot with the memory debugging a stock kernel can switch on (detectors.py)
    gdb_port: int | None = None  # QEMU's gdb stub on 127.0.0.1:PORT, the kernel booted nokaslr, never a snapshot (vm run --gdb)


@dataclass(frozen=True)
class GuestSetup:
    """What every VM of one kernel shares: the machine, and why this accelerator."""

    machine: Machine
    accel: AccelChoice
    image_kind: str  # "pvh-elf" or "bzimage"
    image_note: str = ""  # why the bzImage (a fallback), for the report
    detectors: tuple[str, ...] = ()  # what watches for memory and locking bugs
    sanitize: bool = False  # the kernel arguments of --sanitize are in the machine's


def machine_for(pair: KernelPair, accel: str = "auto", guest_files: Sequence[FileSpec] = (), sanitize: bool = False) -> GuestSetup:
    """The agent VM for `pair`: the check library and the discovery scripts in its
    initramfs, plus `guest_files` (big, shared files such as staprun and its
    libraries: the UART moves only ~30 KB/s); with `sanitize`, the kernel arguments
    that switch on its memory debugging."""
    qemu.require(qemu.QEMU)  # before anything builds or boots: a message, not a traceback from a worker
    choice = probe_accel(accel)
    image = boot_image(pair.image, pair.release)
    library, *scripts = check_files()
    initrd = agent_initramfs(library, [*scripts, *guest_files])
    watching = detectors(config_of(pair), sanitize)
    return GuestSetup(fast_machine(image.path, initrd, watching.append, accel=choice.accel), choice, image.kind,
                      image.note if image.kind == "bzimage" else "", watching.names, sanitize)


def _bzimage_instead(pair: KernelPair, setup: GuestSetup, exc: GuestDidNotStart, guest_files: Sequence[FileSpec]) -> GuestSetup | None:
    """After a PVH boot that died before /init (measured: a 6.1 KASAN vmlinux triple-faults
    at its first instruction), the same kernel's bzImage, remembered for next time; None
    when that does not apply."""
    if setup.image_kind != "pvh-elf" or exc.reached_init or not exc.exited or images.pvh_entry_of(pair.image):
        return None  # not a PVH boot of an extracted vmlinux, or the kernel got as far as /init
    images.mark_pvh_unbootable(pair.image, "the guest ended before /init ran", pair.release)
    return machine_for(pair, setup.accel.accel, guest_files, setup.sanitize)


def _with_gdb(setup: GuestSetup, port: int | None) -> GuestSetup:
    """With a port: QEMU's gdb stub there, the kernel booted nokaslr (the caller boots fresh:
    a restored guest's addresses are its own boot's)."""
    if port is None:
        return setup
    m = setup.machine
    return replace(setup, machine=replace(m, append=(*m.append, "nokaslr"), extra=(*m.extra, "-gdb", f"tcp:127.0.0.1:{port}")))


def failure_of_error(release: str, project: Path, exc: UserError) -> BuildFailure:
    """The BuildFailure of whatever stopped a request before its run."""
    if isinstance(exc, BuildFailed):
        return exc.failure
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return BuildFailure(release, Path(project), lines[0], lines=tuple(lines), exit_code=exc.exit_code)


def _charged_entry(run: TestRun, check: str | None, c_names: Sequence[tuple[str, str]]) -> str:
    """The spec entry a check is about (its name starts with "<path>: "), or ""."""
    if not c_names or not check or not check.isdigit() or not 0 < int(check) <= len(run.checks):
        return ""
    about = run.checks[int(check) - 1].name.split(": ", 1)[0]
    return about if about in {path for _, path in c_names} else ""


@dataclass(frozen=True)
class KernelDwarf:
    """A kernel built with DWARF: its vmlinux, and the source tree its file names start with."""

    vmlinux: Path
    source: Path | None


def kernel_dwarf(pair: KernelPair) -> KernelDwarf | None:
    """The DWARF of `pair`'s kernel when it has some (a debug kernel's build tree does)."""
    vmlinux = Path(pair.build_dir) / "vmlinux"
    if not has_line_tables(vmlinux):
        return None
    source = Path(pair.build_dir) / "source"  # an O= build tree points at its source
    return KernelDwarf(vmlinux, source.resolve() if source.exists() else Path(pair.build_dir).resolve())


def with_frames(run: TestRun, prep: Prepared, project: Path, dwarf: KernelDwarf | None = None) -> TestRun:
    """`run` with each crash report's module frames decoded to the project's source
    lines (and with `dwarf`, the kernel's own frames to the kernel's), and kmemleak's
    findings (the check LEAK_CHECK) read and decoded: the check's diagnostics start
    with one line per leak, the verdict names the first."""
    if prep.built is None:
        return run
    kos = {m.name: m.debug_ko for m in prep.built.modules}
    root = Path(project).resolve()
    if run.crashes:
        frames = []
        for report in run.crashes:
            ours = name_entries(decode(module_frames(report.excerpt, list(kos)), kos, root), prep.c_names,
                                _charged_entry(run, report.check, prep.c_names))
            kernel = decode_kernel(kernel_frames(report.excerpt), dwarf.vmlinux, dwarf.source) if dwarf is not None else []
            frames.append(tuple(ours + kernel))
        run = replace(run, frames=tuple(frames))
    found: list[leaks.Leak] = []
    checks = list(run.checks)
    for i, c in enumerate(checks):
        if c.name != LEAK_CHECK.name or c.status is not Status.FAIL:
            continue
        parsed, sections = leaks.parse(c.diagnostics)
        mine = [replace(leak, check=c.number, frames=tuple(name_entries(leak.frames, prep.c_names)))
                for leak in (leaks.decoded(x, sections, kos, root) for x in parsed)]
        checks[i] = replace(c, diagnostics=(*leaks.summary(mine), *c.diagnostics))
        found += mine
    if not found:
        return run
    verdict = f"{run.verdict}: {found[0].title}" if run.exit_code == EXIT_CHECKS_FAILED else run.verdict
    return replace(run, checks=tuple(checks), leaks=tuple(found), verdict=verdict)


def _dirty(pr: PayloadRun) -> bool:
    """Can the next module use this guest? Not after a death, a module left
    loaded (the next insmod of the same name would fail), a failing taint, or a
    process left running (it could write into the next one's results)."""
    return (pr.done is None or pr.done.modules_loaded > 0 or pr.done.processes_left > 0
            or crash.decode_taint(pr.done.taint).failed)


def _stop_builds(builder: ThreadPoolExecutor) -> None:
    """For a run that cannot go on: builds not started never start, and the running ones
    stop now, each of their steps (a sandboxed build runs several), not when done."""
    with stopping():
        builder.shutdown(wait=True, cancel_futures=True)


def run(requests: Sequence[RunRequest], pair: KernelPair, options: RunOptions = RunOptions(),
        on_line: Callable[[int, str], None] | None = None) -> list[tuple[TestRun, Prepared | None]]:
    """Every request on `pair` in as few boots as possible; one (TestRun, Prepared or
    None after a build failure) per request, in order. `on_line(i, line)` sees each
    KTAP line of request i as it arrives. A crash's module frames are decoded here,
    while the unstripped .ko files exist (they go with run()'s scratch directory)."""
    qemu.require(qemu.QEMU)  # before anything builds: a message, not a traceback from a worker
    # a debug kernel's checks take longer: so may they (the detectors machine_for() finds too)
    slow = slowdown(detectors(config_of(pair), options.sanitize).names)
    check_timeout = options.check_timeout * slow if options.check_timeout else None
    snapshot = options.snapshot if options.gdb_port is None else False
    store = snapshot if isinstance(snapshot, SnapshotStore) else SnapshotStore() if snapshot else None
    jobs = max(1, min(options.jobs, len(requests)))
    results: list[tuple[TestRun, Prepared | None] | None] = [None] * len(requests)
    failures: list[BaseException] = []
    work: queue.Queue = queue.Queue()
    for i in range(len(requests)):
        work.put(i)

    def logs(i: int) -> Path | None:
        if options.keep_logs is None:
            return None
        return options.keep_logs / f"{i + 1:03d}-{requests[i].name}" if len(requests) > 1 else options.keep_logs

    setup_lock = threading.Lock()
    vm_setup: GuestSetup  # found while kbuild compiles (below); a bzImage fallback replaces it

    def start_vm(number: int, timeout: float) -> AgentVM:
        nonlocal vm_setup
        setup = vm_setup
        vm = AgentVM(setup.machine, store, save_snapshot=number == 0)
        try:
            vm.start(timeout)
            return vm
        except GuestDidNotStart as exc:
            vm.finish()
            with setup_lock:
                if vm_setup is setup:  # the first worker to fail switches every VM of this run
                    fallback = _bzimage_instead(pair, setup, exc, options.guest_files)
                    if fallback is None:
                        raise
                    vm_setup = _with_gdb(fallback, options.gdb_port)
            if vm_setup.image_kind != "bzimage":
                raise
            return start_vm(number, timeout)

    with tempfile.TemporaryDirectory(prefix="dbgscaffold-test-") as tmp, ThreadPoolExecutor(max_workers=jobs) as builder:
        built = [builder.submit(r.checks.prepare, r.project, pair, Path(tmp) / str(i), check_timeout)
                 for i, r in enumerate(requests)]
        try:  # while kbuild compiles: a first run extracts the vmlinux and makes the initramfs here
            vm_setup = _with_gdb(machine_for(pair, options.accel, options.guest_files, options.sanitize), options.gdb_port)
            dwarf = kernel_dwarf(pair)
        except BaseException:
            _stop_builds(builder)
            raise

        def worker(number: int) -> None:
            vm = None
            try:
                while not failures:
                    try:
                        i = work.get_nowait()
                    except queue.Empty:
                        return
                    timeout = (requests[i].timeout or options.timeout) * slow
                    if vm is None:  # boots while the build of request i is still running
                        boot_timeout = max(timeout, options.timeout * slow)  # a boot may need more than a short [test] timeout
                        vm = start_vm(number, boot_timeout)
                        if not built[i].done():  # time to spare: the restored guest's first payload is slow
                            vm.warm_up(warm_up_payload(), boot_timeout)
                    try:
                        prep = built[i].result()
                    except UserError as exc:
                        results[i] = (TestRun.of_build_failure(requests[i].name, failure_of_error(pair.release, requests[i].project, exc)), None)
                        continue
                    except subprocess.TimeoutExpired as exc:  # make never finished: stopped (kbuild.build)
                        message = f"error: the build ran longer than {exc.timeout:g} s and was stopped"
                        failure = BuildFailure(pair.release, requests[i].project, message, lines=(message,))
                        results[i] = (TestRun.of_build_failure(requests[i].name, failure), None)
                        continue
                    if failures:  # another worker failed while this build ran: the run is over
                        return
                    vm.workdir = logs(i)
                    line_of_i: Callable[[str], None] | None = None
                    if on_line is not None:
                        def line_of_i(line: str, i: int = i) -> None:
                            on_line(i, line)
                    pr = vm.run(prep.payload, timeout, line_of_i)
                    boot_note = "; ".join(x for x in (vm_setup.image_note, pr.boot.note) if x)
                    judged = judge(prep.module, list(prep.names), pr.result, pair.release, vm_setup.accel.accel,
                                   vm_setup.accel.reason, vm_setup.image_kind, prep.build_seconds, prep.pack_seconds,
                                   boot=pr.boot.kind, boot_note=boot_note)
                    results[i] = (replace(with_frames(judged, prep, requests[i].project, dwarf), detectors=vm_setup.detectors), prep)
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
                    if failures:  # a worker failed: the others' builds stop now, not when done
                        _stop_builds(builder)
        except BaseException:
            failures.append(KeyboardInterrupt())
            with stopping():  # as _stop_builds, while the workers leave
                builder.shutdown(wait=False, cancel_futures=True)
                for t in threads:
                    t.join(timeout=15)
                builder.shutdown(wait=True)
            raise
        if failures:
            _stop_builds(builder)
            raise failures[0]
    return [r for r in results if r is not None]
