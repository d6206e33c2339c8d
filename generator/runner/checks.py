"""The guest's checks of a project's modules: a POSIX shell script for busybox ash.

Where the checks come from (a RunPlan): the spec of a generated project (its
entries), discovery (what the modules created in debugfs, /proc and their
parameters, found in the guest by listing before and after insmod, exercised by
module_templates/guest/discover/*.sh, one KTAP subtest result per file), and
the project's own tests/*.sh; around them, load in dependency order, unload in
reverse, and load/unload cycles.

Every check is one KTAP result on fd 3 (the results port), numbered in plan
order, run by `run_check` from the guest library (module_templates/guest/ktap.sh),
which writes `dbgscaffold: begin check N` / `end check N` to /dev/kmsg around
it (so crash.classify() can attribute a kernel report to it) and reports the
taint before and after and the uptime it took.

What is checked follows the type table: the read-back format is the type's
`read_format` (how the kernel prints it), writability its `writes` and the
kernel version (a blob is read-only before 6.8 whatever its mode).

With a per-check limit (script(check_timeout=)), run_check kills a check that
outlives it and reports `not ok N NAME # TIMEOUT`; a check stuck in a module's
code (or surviving SIGKILL) ends the run at once: its kernel stack, `Bail out!`,
power-off. With stress_seconds, stress_checks() adds random and oversized writes,
concurrent readers and writers and a read-back while the module is loaded.

Pure: plan(), script(), render_script(), stress_checks(), printf_format(). Edges:
user_checks() (reads the project's tests/), guest_files() (reads the templates).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..paths import templates_root
from ..spec_model import Check, Entry, Spec, printf_format, quoted
from ..vm.agent import PAYLOAD_SCRIPT, pack_payload
from ..vm.initramfs import DEBUGFS, FileSpec

__all__ = ["Check", "printf_format"]  # the vocabulary of checks, for the labs' own

GUEST_LIB = "/checks/ktap.sh"
GUEST_DISCOVER = "/checks/discover"
LOAD_CYCLES = 3


# --stress: the random and oversized writes (a fixed handful per writable file) come
# first; the concurrent phase then runs until STRESS_RESERVE before the budget ends
# (the read-back and run_check's own cost), but never less than STRESS_MIN_CONCURRENT.
STRESS_RESERVE = 0.5
STRESS_MIN_CONCURRENT = 1.0
STRESS_SIZES = (0, 1, 4096, 65536)  # with the file's own size - 1, size and size + 1


def stress_checks(spec: Spec, version: tuple[int, ...], seconds: float) -> list[Check]:
    """Random and oversized writes to each writable file, concurrent readers and writers
    for what is left of `seconds`, then every readable file must still read."""
    root = spec.module.root
    files = [e for e in checked_files(spec) if e.mode]
    readable = [e for e in files if e.readable]
    writers = [e for e in files if e.kind.writable(e, version) and e.kind.stress_values(e)[0]]
    if not readable and not writers:
        return []
    path = {e.path: quoted(f"{DEBUGFS}/{root}/{e.path}") for e in files}
    out = []
    for e in files:
        size = e.kind.nominal_size(e)
        if not e.writable_mode or size is None:
            continue  # nothing a write could reach
        sizes = sorted(set(STRESS_SIZES) | {size - 1, size, size + 1})
        back = f" && still_reads {path[e.path]}" if e.readable else ""
        out.append(Check(f"stress: {e.path}: random and oversized writes", f"stress_random {path[e.path]} {' '.join(map(str, sizes))}{back}"))
    loops = []
    for e in readable:  # two readers where a writer races them
        loops += [f"stress_bg reader {path[e.path]}"] * (2 if e in writers else 1)
    for e in writers:
        values, strict = e.kind.stress_values(e)
        loops.append(f"stress_bg writer {path[e.path]} {int(strict)} " + " ".join(printf_format(v) for v in values))
    budget = max(STRESS_MIN_CONCURRENT, seconds - STRESS_RESERVE)
    start = f"stress_start {int(budget * 100)} {int(STRESS_MIN_CONCURRENT * 100)}"
    n_readers = sum(1 for x in loops if " reader " in x)
    out.append(Check(f"stress: {n_readers} readers and {len(writers)} writers at once", "; ".join([start, *loops, "stress_wait"])))
    if readable:
        out.append(Check("stress: every file still reads", "still_reads " + " ".join(path[e.path] for e in readable)))
    # The budget counts from the first stress check.
    out[0] = Check(out[0].name, "stress_clock; " + out[0].body)
    return out


def directory_check(root: str, path: str) -> Check:
    """`path` (below the guest directory `root`) is a directory."""
    return Check(f"{path}: directory exists", f"[ -d {quoted(f'{root}/{path}')} ] || {{ diag 'no directory {root}/{path}'; exit 1; }}")


def device_entries(spec: Spec) -> list[Entry]:
    """Each demo device's files, as entries whose paths start with the device's name."""
    inst = spec.instance
    return [replace(e, path=f"{dev}/{e.path}") for dev in inst.demo for e in inst.files] if inst is not None else []


def checked_files(spec: Spec) -> list[Entry]:
    """Every file the VM sees: the module's and each demo device's."""
    return [*spec.files, *device_entries(spec)]


def instance_checks(spec: Spec, version: tuple[int, ...]) -> list[Check]:
    """Each demo device: its directories, that a write to one leaves the others alone,
    then every file's own checks."""
    inst, root = spec.instance, f"{DEBUGFS}/{spec.module.root}"
    assert inst is not None
    out = []
    for dev in inst.demo:
        for d in ("", *inst.directories):
            where = f"{dev}/{d}".rstrip("/")
            out.append(directory_check(root, where))
    for e in inst.files if len(inst.demo) > 1 else ():
        writes, initial = e.kind.changing_write(e), e.kind.reads(e, version)
        if writes is None or initial is None or not e.kind.writable(e, version) or not e.readable:
            continue
        first, *others = (quoted(f"{root}/{dev}/{e.path}") for dev in inst.demo)
        body = " && ".join([f"put_ok {first} {printf_format(writes[0])}", *(f"same {p} {printf_format(initial)}" for p in others),
                            f"put_ok {first} {printf_format(writes[1])}"])
        out.append(Check(f"{e.path}: a write to {inst.demo[0]} leaves {', '.join(inst.demo[1:])} alone", body))
    for e in device_entries(spec):
        out += e.kind.checks(e, f"{root}/{e.path}", version)
    return out


@dataclass(frozen=True)
class GuestModule:
    """A module as the guest loads it."""

    name: str  # as /proc/modules and rmmod know it
    ko: str  # its path in the guest
    params: str = ""  # insmod's parameters

    def insmod(self, what: str = "insmod") -> str:
        """Shell that loads it, or says why not (with a Fix) and fails the check."""
        params = f" {self.params}" if self.params else ""  # validated: name=value words, no shell characters
        if what == "insmod":
            return f"load_module {quoted(self.name)} {quoted(self.ko)}{params} || exit 1"
        return f"insmod {quoted(self.ko)}{params} 2>/tmp/.err || {{ diag \"{what}: $(cat /tmp/.err)\"; exit 1; }}"

    def rmmod(self, what: str = "rmmod") -> str:
        return f"rmmod {quoted(self.name)} 2>/tmp/.err || {{ diag \"{what}: $(cat /tmp/.err)\"; exit 1; }}"


@dataclass(frozen=True)
class RunPlan:
    """What one payload checks: its modules (in load order) and where the checks come from."""

    modules: tuple[GuestModule, ...]
    spec: Spec | None = None  # a generated project: checks derived from its entries
    discover: bool = False  # checks derived from what the modules create (discover/*.sh)
    user_scripts: tuple[str, ...] = ()  # guest paths of the project's tests/*.sh
    stress_seconds: float = 0.0  # with a spec: --stress
    leak_check: bool = False  # the kernel has kmemleak: a last check, after every rmmod

    @property
    def root(self) -> str:
        """The spec's debugfs directory, "" without a spec."""
        return f"{DEBUGFS}/{self.spec.module.root}" if self.spec is not None else ""

    @property
    def names(self) -> str:
        return " ".join(m.name for m in self.modules)


# The discovered checks: guest scripts run as KTAP subtests, one result per file.
DISCOVER_SCRIPTS = (
    ("files.sh", "discovered: what {names} created, with its mode"),
    ("reads.sh", "discovered: every readable file reads"),
    ("writes.sh", "discovered: writable numbers and Y/N take their value back"),
)
DISCOVER_MAX = 200  # files listed and exercised at most
# kmemleak's verdict on what the modules allocated and lost (runner.leaks reads its diagnostics).
# It waits 5 s and scans twice (~10 s on the debug kernel under TCG), whatever --check-timeout says.
LEAK_CHECK = Check("no memory leaked", "dbgs_no_leaks")
LEAK_CHECK_MIN_SECONDS = 60


def plan(run: RunPlan, version: tuple[int, ...]) -> list[Check]:
    """Every check, in order: load each module; the spec's entries, the discovered
    files, stress; unload in reverse order, root gone, nothing left; load/unload
    cycles; then the user's scripts (guest paths) with the modules loaded again; with
    a kmemleak kernel, last, what they allocated and lost."""
    mods, root = run.modules, run.root
    rootq = quoted(root)
    has_root = f"[ -d {rootq} ] || {{ diag 'no {root} after insmod'; exit 1; }}" if root else ""
    checks = []
    for i, m in enumerate(mods):
        body = m.insmod()
        if i == 0 and run.discover:
            body = "discover_before; " + body
        if i == 0 and run.leak_check:
            body = "dbgs_leaks_reset; " + body
        if i == len(mods) - 1 and has_root:
            body += "; " + has_root
        checks.append(Check(f"insmod {m.name}" + (f" {m.params}" if m.params else ""), body))
    if run.spec is not None:
        checks += [directory_check(root, d) for d in run.spec.directories]  # explicit and implied, parents first
        for e in run.spec.files:
            checks += e.kind.checks(e, f"{DEBUGFS}/{run.spec.module.root}/{e.path}", version)
        if run.spec.instance is not None:
            checks += instance_checks(run.spec, version)
    if run.discover:
        checks += [Check(title.format(names=run.names), "", user_script=f"{GUEST_DISCOVER}/{name}") for name, title in DISCOVER_SCRIPTS]
    if run.spec is not None and run.stress_seconds > 0:
        checks += stress_checks(run.spec, version, run.stress_seconds)
    checks += [Check(f"rmmod {m.name}", m.rmmod()) for m in reversed(mods)]
    if root:
        checks.append(Check(f"{root} is gone after rmmod", f"[ ! -e {rootq} ] || {{ diag '{root} still exists'; exit 1; }}"))
    if run.discover:
        checks.append(Check(f"everything {run.names} created is gone after rmmod", (
            "_left=; while read -r _p; do [ -e \"$_p\" ] && _left=\"$_left $_p\"; done < \"$DBGS_TMP/.dbgs-created\"; "
            "[ -z \"$_left\" ] || { diag \"still there:$_left\"; exit 1; }")))
    load = "; ".join(
        [*(m.insmod("insmod #$i") for m in mods), *([f"[ -d {rootq} ] || {{ diag \"no root after insmod #$i\"; exit 1; }}"] if root else []),
         *(m.rmmod("rmmod #$i") for m in reversed(mods)), *([f"[ ! -e {rootq} ] || {{ diag \"root left after rmmod #$i\"; exit 1; }}"] if root else [])])
    checks.append(Check(f"load/unload x{LOAD_CYCLES}", f"i=0; while [ $i -lt {LOAD_CYCLES} ]; do i=$((i + 1)); {load}; done"))
    if run.user_scripts:
        checks += [Check(f"insmod {m.name} for tests/", m.insmod()) for m in mods]
        for guest_path in run.user_scripts:
            checks.append(Check(f"tests/{Path(guest_path).name}", "", user_script=guest_path))
        checks += [Check(f"rmmod {m.name} after tests/", m.rmmod()) for m in reversed(mods)]
    if run.leak_check:
        checks.append(LEAK_CHECK)
    return checks


def guest_timeout(seconds: float) -> int:
    """The per-check limit as the guest applies it: whole seconds, rounded up, at least 1."""
    if not seconds > 0:
        raise ValueError(f"a per-check timeout must be positive, not {seconds!r}")
    return max(1, math.ceil(seconds))


def script(run: RunPlan, version: tuple[int, ...], check_timeout: float | None = None) -> str:
    """/run/payload/run.sh: the plan as shell functions and the KTAP header; run by the agent."""
    checks = plan(run, version)
    first = run.modules[0]
    variables = {"MODULE": first.name, "MODULES": run.names, "ROOT": run.root, "KO": first.ko}
    if run.discover:
        variables["DBGS_DISCOVER_MAX"] = str(DISCOVER_MAX)
    return render_script("the checks of one project on one kernel", variables,
                         [(c.name, c.body, c.user_script) for c in checks], check_timeout)


def render_script(what: str, variables: dict[str, str], checks: list[tuple[str, str, str]],
                  check_timeout: float | None = None, epilogue: tuple[str, ...] = (), prologue: tuple[str, ...] = ()) -> str:
    """A run.sh for the guest agent: the library, `prologue` lines, exported `variables`,
    each check (name, shell body, or the guest path of a script run as a KTAP subtest)
    as one numbered KTAP result on fd 3, the final taint (checks_done), then `epilogue` lines."""
    lines = [
        f"# Generated by dbgscaffold: {what}.",
        f". {GUEST_LIB}",
        *prologue,
        "; ".join(f"{k}={quoted(v)}" for k, v in variables.items()),
        "export " + " ".join(variables),
    ]
    if check_timeout is not None:
        # ktap.sh's watchdog times with `read -t`: whole seconds, never below the limit asked for.
        lines += [f"DBGS_CHECK_TIMEOUT={guest_timeout(check_timeout)}", "export DBGS_CHECK_TIMEOUT"]
    lines.append("")
    for n, (_name, body, script_path) in enumerate(checks, 1):
        if not script_path:
            lines += [f"check_{n}() {{", f"    {body}", "}"]
    lines += ["", "_dbgs_res 'KTAP version 1'", f"_dbgs_res '1..{len(checks)}'"]
    for n, (name, body, script_path) in enumerate(checks, 1):
        if script_path:
            lines.append(f"run_user_check {n} {quoted(name)} {quoted(script_path)}")
        elif body == LEAK_CHECK.body and check_timeout is not None:
            lines.append(f"run_check {n} {quoted(name)} check_{n} {max(guest_timeout(check_timeout), LEAK_CHECK_MIN_SECONDS)}")
        else:
            lines.append(f"run_check {n} {quoted(name)} check_{n}")
    lines.append("checks_done")
    lines += epilogue
    return "\n".join(lines) + "\n"


def user_checks(project: Path) -> list[Path]:
    """The executable tests/*.sh of a project, sorted by name."""
    tests = Path(project) / "tests"
    if not tests.is_dir():
        return []
    return sorted(p for p in tests.glob("*.sh") if p.is_file() and p.stat().st_mode & 0o111)


def guest_library() -> str:
    return (templates_root() / "guest" / "ktap.sh").read_text(encoding="utf-8")


@functools.cache
def warm_up_payload() -> bytes:
    """The payload a restored guest runs while kbuild compiles (module_templates/guest/warm-up.sh)."""
    script = (templates_root() / "guest" / "warm-up.sh").read_bytes()
    return pack_payload([FileSpec(PAYLOAD_SCRIPT, script, 0o755)])


def guest_files() -> list[FileSpec]:
    """The check library and the discovery scripts, as the agent initramfs holds them."""
    scripts = templates_root() / "guest" / "discover"
    return [FileSpec(GUEST_LIB, guest_library().encode(), 0o644),
            *(FileSpec.from_path(f"{GUEST_DISCOVER}/{name}", scripts / name, 0o644) for name, _ in DISCOVER_SCRIPTS)]
