"""What crosses the runner's boundary: statuses, a check's result, a build failure, a module's run.

One shape for each outcome: a failed build is a `BuildFailure` inside the
TestRun of the module that failed (never an exception for one module and a
result for a batch); a check's status is a `Status`, a str Enum so reports
and JSON keep their plain words ("pass", "fail", ...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EXIT_BUILD
from ..kbuild import Diagnostic
from ..vm import crash
from .decode import Frame
from .leaks import Leak


class Status(enum.StrEnum):
    """The status of one check (KTAP's words, plus what the host decides)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    TODO = "todo"  # KTAP: a known failure, not counted
    XFAIL = "xfail"
    TIMEOUT = "timeout"  # the check (or the whole run) exceeded its limit
    ERROR = "error"
    CRASHED = "crashed"  # the kernel oopsed or panicked in it, or its result never arrived
    NOT_RUN = "not run"  # the guest stopped or hung before it
    BUILD_FAILED = "build failed"  # nothing ran: the module did not build

    @property
    def ok(self) -> bool:
        """Counts as passing (a skipped or expected-to-fail check is no failure)."""
        return self in (Status.PASS, Status.SKIP, Status.TODO, Status.XFAIL)

    @property
    def error(self) -> bool:
        """Did not get to a verdict of its own (JUnit's <error>, not <failure>)."""
        return self in (Status.CRASHED, Status.TIMEOUT, Status.NOT_RUN, Status.ERROR, Status.BUILD_FAILED)


@dataclass(frozen=True)
class CheckResult:
    number: int
    name: str
    status: Status
    diagnostics: tuple[str, ...] = ()
    seconds: float | None = None
    crash: crash.CrashReport | None = None
    taint_before: int | None = None
    taint_after: int | None = None
    subtests: tuple[tuple[Status, str], ...] = ()  # a KTAP subtest's results: a tests/*.sh, each discovered file

    @property
    def failed(self) -> bool:
        return not self.status.ok


@dataclass(frozen=True)
class BuildFailure:
    """Why a module produced nothing to run: the compiler's (or stap's, or the
    lab's) messages. `exit_code` is 3 for a build, 2 for a project that is no
    module at all."""

    release: str
    project: Path | None
    message: str  # one line: the first error
    diagnostics: tuple[Diagnostic, ...] = ()  # parsed kbuild messages, when there are any
    lines: tuple[str, ...] = ()  # what to show: the diagnostics, else the tail of the tool's output
    notes: tuple[str, ...] = ()  # hints such as kernel_name_clashes()
    exit_code: int = 3

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def relative(self) -> tuple[str, ...]:
        """The lines with the project's path taken out (for reports about someone else's files)."""
        prefix = str(Path(self.project).resolve()) + "/" if self.project is not None else None
        return tuple(x.replace(prefix, "") if prefix else x for x in self.lines)

    def __str__(self) -> str:
        shown = [*self.lines, *(f"note: {n}" for n in self.notes)]
        return f"error: the build against {self.release} failed:\n" + "\n".join(f"  {x}" for x in shown)


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a pytest class
    module: str
    release: str
    accel: str
    accel_reason: str
    image_kind: str
    checks: tuple[CheckResult, ...]
    crashes: tuple[crash.CrashReport, ...]
    taint: crash.Taint | None
    ended: str  # qemu.ended_how(): poweroff, panic, timeout, ..., "not started"
    timed_out: bool
    boot_seconds: float | None
    wall_seconds: float  # the QEMU run
    build_seconds: float
    pack_seconds: float
    console: str
    results: str
    exit_code: int
    verdict: str  # one line: "pass", "3 checks failed", "crash: ...", "timeout ...", "build failed: ..."
    warnings: tuple[str, ...] = ()
    argv: tuple[str, ...] = field(default=(), compare=False)
    boot: str = ""  # "snapshot" (a saved guest restored) or "fresh"
    boot_note: str = ""  # what happened to the snapshot
    build_failure: BuildFailure | None = None
    frames: tuple[tuple[Frame, ...], ...] = ()  # per crash report: its frames in the modules under test, decoded
    detectors: tuple[str, ...] = ()  # what watched for memory and locking bugs (runner.detectors)
    leaks: tuple[Leak, ...] = ()  # what kmemleak found the modules lost (runner.leaks)
    forged: tuple[str, ...] = ()  # results-port lines without the run's token, ignored (the first few)
    forged_count: int = 0

    @property
    def findings(self) -> tuple[str, ...]:
        """The title of each distinct kernel report and leak, in order (syzkaller's style)."""
        titles = [c.title for c in self.crashes] + [x.title for x in self.leaks]
        return tuple(dict.fromkeys(titles))

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    @classmethod
    def of_build_failure(cls, module: str, failure: BuildFailure) -> TestRun:
        """The run of a module that did not build, or did not get as far (a usage error, exit 2;
        a missing tool or kernel, exit 4): no checks, the failure's exit code."""
        return cls(
            module=module, release=failure.release, accel="", accel_reason="", image_kind="", checks=(), crashes=(),
            taint=None, ended="not started", timed_out=False, boot_seconds=None, wall_seconds=0.0, build_seconds=0.0,
            pack_seconds=0.0, console="", results="", exit_code=failure.exit_code,
            verdict=f"{'build failed' if failure.exit_code == EXIT_BUILD else 'not run'}: {failure.message}", warnings=failure.lines,
            build_failure=failure,
        )
