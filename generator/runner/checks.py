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

import math
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..debugfs_types import Kind, Writes
from ..spec import Entry, Spec
from ..vm.initramfs import DEBUGFS, FileSpec

GUEST_LIB = "/checks/ktap.sh"
GUEST_DISCOVER = "/checks/discover"
LOAD_CYCLES = 3
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:/=+-")


@dataclass(frozen=True)
class Check:
    """One top-level KTAP result: its description and the shell body that decides it
    (exit 0 pass, 4 skip, anything else fail; diagnostics through `diag`)."""

    name: str
    body: str
    user_script: str = ""  # guest path of a user's tests/*.sh (body unused then)


def printf_format(data: bytes) -> str:
    """A single-quoted printf FORMAT producing exactly `data` (octal escapes for
    everything outside a small safe set: quotes, %, backslash, controls, non-ASCII)."""
    out = []
    for b in data:
        out.append(chr(b) if b in _SAFE else f"\\{b:03o}")
    return "'" + "".join(out) + "'"


def _reads(e: Entry, version: tuple[int, ...]) -> bytes | None:
    """What read(2) of the entry returns right after load, or None when we can't know."""
    t = e.type
    if t.kind is Kind.INTEGER:
        return t.read_format.format(int(e.value or 0)).encode()
    if t.kind is Kind.BOOL:
        return t.read_format.format("Y" if e.value else "N").encode()
    if t.kind in (Kind.BLOB, Kind.STRING):
        return bytes(e.value or b"")
    if t.kind is Kind.U32_ARRAY:
        values = list(e.value or ()) + [0] * ((e.length or 0) - len(e.value or ()))
        return (" ".join(str(v) for v in values) + "\n").encode()
    return None


def writable(e: Entry, version: tuple[int, ...]) -> bool:
    """Does the kernel let a write through (for root) on this kernel version?"""
    if e.mode is None or not e.mode & 0o222:
        return False
    if e.type.writes is Writes.NO:
        return False
    if e.type.writes is Writes.SINCE_6_8:
        return bool(version) and version >= (6, 8)
    return True


def shown_mode(e: Entry, version: tuple[int, ...]) -> str:
    """`stat -c %a` of the file: before 6.8 debugfs masks a blob read-only."""
    mode = e.mode & 0o7777
    if e.type.writes is Writes.SINCE_6_8 and not writable(e, version):
        mode &= ~0o222
    return f"{mode:o}"


def _q(path: str) -> str:
    return shlex.quote(path)


def _entry_checks(root: str, e: Entry, version: tuple[int, ...]) -> list[Check]:
    path = f"{DEBUGFS}/{root}/{e.path}"
    p = _q(path)
    kind = e.type.kind
    if kind is Kind.DIR:
        return [Check(f"{e.path}: directory exists", f"[ -d {p} ] || {{ diag 'no directory {path}'; exit 1; }}")]
    out = [
        Check(f"{e.path}: exists", f"[ -f {p} ] || {{ diag 'no file {path}'; exit 1; }}"),
        Check(f"{e.path}: mode {shown_mode(e, version)}", f"mode_is {p} {shown_mode(e, version)}"),
    ]
    initial = _reads(e, version)
    if initial is not None and e.mode & 0o444:
        out.append(Check(f"{e.path}: reads its initial value", f"same {p} {printf_format(initial)}"))
    fmt = e.type.read_format
    if kind is Kind.INTEGER and writable(e, version):
        lo, hi = e.type.minimum, e.type.maximum
        lo = 0 if lo is not None and lo <= 0 <= hi else lo
        for v in (lo, hi):
            shown = printf_format(fmt.format(v).encode())
            out.append(Check(f"{e.path}: write {v}, read it back", f"put_ok {p} '{v}\\n' && same {p} {shown}"))
        back = printf_format(fmt.format(hi).encode())
        out.append(Check(f"{e.path}: a garbage write is rejected", f"put_fails {p} 'zz\\n' && same {p} {back}"))
    elif kind is Kind.BOOL and writable(e, version):
        out.append(Check(f"{e.path}: write 1, reads Y", f"put_ok {p} '1\\n' && same {p} 'Y\\n'"))
        out.append(Check(f"{e.path}: write 0, reads N", f"put_ok {p} '0\\n' && same {p} 'N\\n'"))
        # debugfs_write_file_bool() returns the full count even when kstrtobool() refuses.
        out.append(Check(f"{e.path}: a garbage write changes nothing", f"put {p} 'maybe\\n'; same {p} 'N\\n'"))
    elif kind is Kind.STRING and e.mode & 0o222 and e.size:
        room = e.size - 1
        new = (b"dbgscaffold check\n" * (room // 18 + 1))[:room]
        new = new[:-1] + b"\n" if len(new) > 1 else new
        nf = printf_format(new)
        out.append(Check(f"{e.path}: replace ({len(new)} bytes), exact read-back", f"put_ok {p} {nf} && same {p} {nf}"))
        too_long = printf_format(b"x" * e.size)
        out.append(Check(f"{e.path}: a {e.size}-byte write is rejected (ENOSPC)", f"put_fails {p} {too_long} 'No space left' && same {p} {nf}"))
        out.append(Check(f"{e.path}: an empty write changes nothing", f"put_ok {p} {nf} && : > {p} && same {p} {nf}"))
    elif kind is Kind.BLOB and writable(e, version):
        data = bytes(e.value or b"")
        if data:
            out.append(Check(f"{e.path}: writing its own bytes back works", f"put_ok {p} {printf_format(data)} && same {p} {printf_format(data)}"))
    if kind is Kind.BLOB and e.type.writes is Writes.SINCE_6_8 and not writable(e, version) and version >= (6, 8):
        # From 6.8 a blob always gets the read-write file operations and only its mode
        # bits stop a write: root (CAP_DAC_OVERRIDE) writes a 0444 blob. Say so, skip.
        out.append(Check(f"{e.path}: write rejection not checked", "diag 'from 6.8 a blob has a write handler whatever its mode; root writes it'; exit 4"))
    elif kind in (Kind.INTEGER, Kind.BOOL, Kind.BLOB, Kind.U32_ARRAY) and not writable(e, version):
        why = "before 6.8 a blob is read-only" if kind is Kind.BLOB and e.mode & 0o222 else "read-only"
        back = f" && same {p} {printf_format(initial)}" if initial is not None and e.mode & 0o444 else ""
        out.append(Check(f"{e.path}: a write is rejected even for root ({why})", f"put_fails {p} '1\\n'{back}"))
    return out


# --stress: the random and oversized writes (a fixed handful per writable file) come
# first; the concurrent phase then runs until STRESS_RESERVE before the budget ends
# (the read-back and run_check's own cost), but never less than STRESS_MIN_CONCURRENT.
STRESS_RESERVE = 0.5
STRESS_MIN_CONCURRENT = 1.0
STRESS_SIZES = (0, 1, 4096, 65536)  # with the file's own size - 1, size and size + 1


def _stress_values(e: Entry) -> tuple[list[bytes], bool]:
    """What a concurrent writer writes to the entry, and whether each write must succeed."""
    kind = e.type.kind
    if kind is Kind.INTEGER:
        lo, hi = e.type.minimum, e.type.maximum
        lo = 0 if lo is not None and lo <= 0 <= hi else lo
        return [f"{v}\n".encode() for v in (lo, hi, (lo + hi) // 2)], True
    if kind is Kind.BOOL:
        return [b"1\n", b"0\n", b"Y\n", b"n\n"], True
    if kind is Kind.STRING and e.size:
        full = (b"stress " * e.size)[: e.size - 2] + b"\n"
        return [b"s\n", full], True
    if kind is Kind.BLOB:
        return [bytes(e.value or b"")], True
    if kind is Kind.CUSTOM:  # the user's handlers decide what they accept
        return [bytes(e.value or b"") or b"1\n", b"1\n"], False
    return [], False


def _nominal_size(e: Entry) -> int:
    """The length the entry holds, for writes just below, at and above it."""
    kind = e.type.kind
    if kind is Kind.STRING and e.size:
        return e.size
    if kind is Kind.CUSTOM:  # the buffer the generated user/ file starts with
        return max(64, len(e.value or b"") + 1)
    if kind in (Kind.BLOB, Kind.STRING):
        return max(1, len(e.value or b""))
    if kind is Kind.BOOL:
        return 2
    return len(str(e.type.maximum)) + 1 if e.type.maximum is not None else 21


def stress_checks(spec: Spec, version: tuple[int, ...], seconds: float) -> list[Check]:
    """Random and oversized writes to each writable file, concurrent readers and writers
    for what is left of `seconds`, then every readable file must still read."""
    root = spec.module.root
    files = [e for e in spec.files if e.mode]
    readable = [e for e in files if e.mode & 0o444]
    writers = [e for e in files if writable(e, version) and _stress_values(e)[0]]
    if not readable and not writers:
        return []
    path = {e.path: _q(f"{DEBUGFS}/{root}/{e.path}") for e in files}
    out = []
    for e in files:
        if not e.mode & 0o222 or e.type.kind in (Kind.U32_ARRAY, Kind.SEQ):
            continue  # nothing a write could reach
        size = _nominal_size(e)
        sizes = sorted(set(STRESS_SIZES) | {size - 1, size, size + 1})
        back = f" && still_reads {path[e.path]}" if e.mode & 0o444 else ""
        out.append(Check(f"stress: {e.path}: random and oversized writes", f"stress_random {path[e.path]} {' '.join(map(str, sizes))}{back}"))
    loops = []
    for e in readable:  # two readers where a writer races them
        loops += [f"stress_bg reader {path[e.path]}"] * (2 if e in writers else 1)
    for e in writers:
        values, strict = _stress_values(e)
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
            return f"load_module {_q(self.name)} {_q(self.ko)}{params} || exit 1"
        return f"insmod {_q(self.ko)}{params} 2>/tmp/.err || {{ diag \"{what}: $(cat /tmp/.err)\"; exit 1; }}"

    def rmmod(self, what: str = "rmmod") -> str:
        return f"rmmod {_q(self.name)} 2>/tmp/.err || {{ diag \"{what}: $(cat /tmp/.err)\"; exit 1; }}"


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
    rootq = _q(root)
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
        for d in run.spec.directories:  # explicit and implied, parents first
            dq = _q(f"{root}/{d}")
            checks.append(Check(f"{d}: directory exists", f"[ -d {dq} ] || {{ diag 'no directory {root}/{d}'; exit 1; }}"))
        for e in run.spec.files:
            checks += _entry_checks(run.spec.module.root, e, version)
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
        "; ".join(f"{k}={_q(v)}" for k, v in variables.items()),
        "export " + " ".join(variables),
    ]
    if check_timeout is not None:
        # ktap.sh's watchdog times with `read -t`: whole seconds, never below the limit asked for.
        lines += [f"DBGS_CHECK_TIMEOUT={guest_timeout(check_timeout)}", "export DBGS_CHECK_TIMEOUT"]
    lines.append("")
    for n, (_name, body, script_path) in enumerate(checks, 1):
        if not script_path:
            lines += [f"check_{n}() {{", f"    {body}", "}"]
    lines += ["", "echo 'KTAP version 1' >&3", f"echo '1..{len(checks)}' >&3"]
    for n, (name, body, script_path) in enumerate(checks, 1):
        if script_path:
            lines.append(f"run_user_check {n} {_q(name)} {_q(script_path)}")
        elif body == LEAK_CHECK.body and check_timeout is not None:
            lines.append(f"run_check {n} {_q(name)} check_{n} {max(guest_timeout(check_timeout), LEAK_CHECK_MIN_SECONDS)}")
        else:
            lines.append(f"run_check {n} {_q(name)} check_{n}")
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
    from ..render import templates_root

    return (templates_root() / "guest" / "ktap.sh").read_text(encoding="utf-8")


def guest_files() -> list[FileSpec]:
    """The check library and the discovery scripts, as the agent initramfs holds them."""
    from ..render import templates_root

    scripts = templates_root() / "guest" / "discover"
    return [FileSpec(GUEST_LIB, guest_library().encode(), 0o644),
            *(FileSpec.from_path(f"{GUEST_DISCOVER}/{name}", scripts / name, 0o644) for name, _ in DISCOVER_SCRIPTS)]
