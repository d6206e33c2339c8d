"""A pure classifier of kernel log text, a taint decoder, and check attribution.

Patterns are data (CRASH_PATTERNS, after syzkaller's Linux report headers),
tried in order, most specific first. A report runs from its header line to
the `---[ end trace` / `---[ end Kernel panic` marker, to a check marker, or
for MAX_REPORT_LINES lines, whichever comes first. Headers inside a running
report belong to it (a NULL dereference's `Oops:` line is not a second
crash), except `Kernel panic - not syncing`, which always starts its own.

Check markers: the guest writes `dbgscaffold: begin check <id>` and
`dbgscaffold: end check <id>` to /dev/kmsg around each check (CHECK_BEGIN,
CHECK_END below), so they land in the kernel log in order with the crash
text; a report between a begin and its end (or after a begin that never
ended: the check died) is attributed to that check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

MAX_REPORT_LINES = 80

CHECK_BEGIN = "dbgscaffold: begin check {id}"
CHECK_END = "dbgscaffold: end check {id}"
_CHECK_MARK = re.compile(r"dbgscaffold: (begin|end) check (\S+)")

# printk prefix: "<4>" level, "[   12.345678]" time, "[  T123]" caller id.
_PREFIX = re.compile(r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?\s?")
_END = re.compile(r"---\[ end (?:trace [0-9a-f]+|Kernel panic - not syncing.*) \]---")


@dataclass(frozen=True)
class CrashPattern:
    kind: str
    header: re.Pattern
    title: str  # format string: {m1}, {m2}... groups of the header match
    fatal: bool  # the kernel (or the task) died: an oops, a BUG(), a panic
    end: re.Pattern | None = None  # where a report without an end-trace marker ends


def _p(kind: str, regex: str, title: str, fatal: bool, end: str | None = None) -> CrashPattern:
    return CrashPattern(kind, re.compile(regex), title, fatal, re.compile(end) if end else None)


# Reports printed with dump_stack() have no end-trace marker: the stack's end is theirs.
_STACK_END = r"^\s*</TASK>\s*$"
_SANITIZER_END = r"^={40,}\s*$"


# Order matters: the first match wins. 6.9+ x86 prefixes die() headers with "Oops: ".
CRASH_PATTERNS: tuple[CrashPattern, ...] = (
    _p("panic", r"Kernel panic - not syncing: ?(.*)", "Kernel panic - not syncing: {m1}", True, r"^(?:Kernel Offset:|Rebooting in)"),
    _p("kasan", r"BUG: KASAN: ([\w-]+)", "KASAN: {m1}", True, _SANITIZER_END),
    _p("kfence", r"BUG: KFENCE: ([\w-]+(?: [\w-]+)*?)(?: in |$)", "KFENCE: {m1}", True, _SANITIZER_END),
    _p("ubsan", r"UBSAN: ([\w-]+(?: [\w-]+)*?)(?: in |$)", "UBSAN: {m1}", False, _SANITIZER_END),
    _p("soft-lockup", r"BUG: soft lockup - CPU#\d+ stuck for", "BUG: soft lockup", False, _STACK_END),
    _p("hard-lockup", r"(?:Watchdog detected hard LOCKUP|watchdog: Watchdog detected hard LOCKUP|NMI watchdog: .*hard LOCKUP)", "hard lockup",
       True, _STACK_END),
    _p("hung-task", r"INFO: task (\S+?):\d+ blocked for more than \d+ seconds", "INFO: task hung ({m1})", False, _STACK_END),
    _p("rcu-stall", r"INFO: rcu[\w_]* (?:self-)?detected (?:stall|stalls|expedited stalls)", "INFO: rcu detected stall", False, _STACK_END),
    _p("null-deref", r"BUG: (?:unable to handle )?kernel NULL pointer dereference", "BUG: kernel NULL pointer dereference", True),
    _p("paging", r"BUG: unable to handle (?:page fault|kernel paging request)", "BUG: unable to handle page fault", True),
    _p("paging", r"Unable to handle kernel (NULL pointer dereference|paging request)", "Unable to handle kernel {m1}", True),
    _p("sleep-in-atomic", r"BUG: (sleeping function called from invalid context|scheduling while atomic)", "BUG: {m1}", False, _STACK_END),
    _p("bad-page", r"BUG: Bad (page|rss)[ -]\w+", "BUG: Bad page state", False, _STACK_END),
    # slub_debug (dbgscaffold test --sanitize): "BUG kmalloc-64 (Tainted: ...): Object corrupt", found
    # when the slab is next checked; "FIX kmalloc-64: Restoring ..." ends it.
    _p("slub", r"^BUG ([\w.-]+) \((?:Not tainted|Tainted:[^)]*)\): (.+)$", "SLUB: {m2} ({m1})", False, r"^FIX [\w.-]+: "),
    # refcount_t and list debugging (DEBUG_LIST) WARN with their message first, in syzkaller's words
    _p("refcount", r"refcount_t: ([^.]+)\.", "refcount bug ({m1})", False),
    _p("list-corruption", r"(list_add corruption|list_add double add|list_del corruption)", "BUG: corrupted list ({m1})", False),
    _p("bug", r"BUG: (.+?)(?: at .*)?$", "BUG: {m1}", False),
    # lockdep (PROVE_LOCKING), in syzkaller's words; before the generic WARNING
    _p("lockdep", r"WARNING: possible (?:circular locking dependency|recursive locking) detected", "possible deadlock", False, _STACK_END),
    _p("lockdep", r"WARNING: (inconsistent lock state|bad unlock balance detected|lock held when returning to user space|held lock freed)!?",
       "{m1}", False, _STACK_END),
    _p("kernel-bug", r"kernel BUG at (\S+?)!?$", "kernel BUG at {m1}", True),
    _p("warning", r"WARNING: (?:CPU: \d+ PID: \d+ at (\S+) |)(.*)", "WARNING", False),
    _p("gpf", r"(?:Oops: )?general protection fault", "general protection fault", True),
    _p("divide-error", r"(?:Oops: )?divide error: ", "divide error", True),
    _p("invalid-opcode", r"(?:Oops: )?invalid opcode: ", "invalid opcode", True),
    _p("oops", r"Oops: (?:Oops: )?[0-9a-f]{4} \[#\d+\]", "Oops", True),
)

# Frames that say nothing about the culprit.
_GENERIC_FRAMES = re.compile(
    r"^(?:__?)?(?:dump_stack|dump_stack_lvl|panic|__warn|warn_slowpath\w*|report_bug|handle_bug|exc_\w+|"
    r"asm_exc_\w+|do_trap|do_error_trap|delay_tsc|__const_udelay|__udelay|__delay|\w*mdelay|"
    r"do_one_initcall|do_init_module|\w*finit_module|\w*init_module\w*|do_syscall_64|"
    r"entry_SYSCALL\w*|schedule\w*|__schedule|msleep|__pfx_\w+|"
    r"object_err|slab_err|slab_bug|print_trailer|check_bytes_and_report|check_object|\w+_debug_processing|"
    r"__slab_free|___slab_alloc|__slab_alloc\w*)$"
)
_FRAME = re.compile(r"^\s*(\?\s+)?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\w+)\])?")
_RIP = re.compile(r"^(?:RIP: [0-9a-f]{4}:|pc : |PC is at )([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\w+)\])?")
_IN_FUNC = re.compile(r" in ([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\w+)\])?")
_WARN_AT = re.compile(r"WARNING: CPU: \d+ PID: \d+ at (\S+) ([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\w+)\])?")


@dataclass(frozen=True)
class CrashReport:
    kind: str  # CrashPattern.kind
    title: str  # e.g. "WARNING in crashmod_init [crashmod]"
    header: str  # the header line, printk prefix stripped
    excerpt: str  # header .. end marker (or bounded), as logged
    line: int  # 1-based line of the header in the log
    fatal: bool
    function: str = ""  # the culprit, if a frame names one
    module: str = ""  # its module, if it lives in one
    check: str | None = None  # the check whose markers surround it
    count: int = 1  # how many times the kernel printed it (a hung task is reported again and again)


@dataclass(frozen=True)
class CheckSpan:
    id: str
    begin_line: int
    end_line: int | None  # None: the check never ended (it died, or the guest did)


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r"), count=1)


def _match(text: str) -> tuple[CrashPattern, re.Match] | None:
    for pat in CRASH_PATTERNS:
        m = pat.header.search(text)
        if m:
            return pat, m
    return None


def _culprit(header: str, body: list[str]) -> tuple[str, str]:
    """(function, module): the first frame in a module, else RIP, else the first
    non-generic reliable frame. For a module under test the module frame is the news."""
    m = _WARN_AT.search(header)
    if m and m.group(3):
        return m.group(2), m.group(3)
    if m:  # a WARN in a core helper (e.g. __copy_overflow): the module that called it is the news
        for line in body:
            if (f := _FRAME.match(line)) and not f.group(1) and f.group(3) and not _GENERIC_FRAMES.match(f.group(2)):
                return f.group(2), f.group(3)
        return m.group(2), ""
    m = _IN_FUNC.search(header)  # KASAN, KFENCE: "... in func+0x6e/0xc0 [mod]"
    if m:
        return m.group(1), m.group(2) or ""
    rip, frames = None, []
    for line in body:
        if rip is None and (r := _RIP.match(line)):
            rip = (r.group(1), r.group(2) or "")
            continue
        if (f := _FRAME.match(line)) and not f.group(1):
            frames.append((f.group(2), f.group(3) or ""))
    candidates = ([rip] if rip else []) + frames
    for fn, mod in candidates:
        if mod and not _GENERIC_FRAMES.match(fn):
            return fn, mod
    for fn, mod in candidates:
        if not _GENERIC_FRAMES.match(fn):
            return fn, mod
    return ("", "")


def _title(pat: CrashPattern, m: re.Match, fn: str, mod: str) -> str:
    groups = {f"m{i}": (g or "").strip() for i, g in enumerate(m.groups(), 1)}
    base = pat.title.format(**groups) if groups else pat.title
    if pat.kind == "panic" or not fn:
        return base
    return f"{base} in {fn}" + (f" [{mod}]" if mod else "")


def check_spans(log: str) -> list[CheckSpan]:
    """The begin/end check markers in the log, paired up in order."""
    spans: list[CheckSpan] = []
    open_: dict[str, int] = {}
    for n, raw in enumerate(log.splitlines(), 1):
        m = _CHECK_MARK.search(raw)
        if not m:
            continue
        what, cid = m.groups()
        if what == "begin":
            if cid in open_:  # begun twice: the first never ended
                spans.append(CheckSpan(cid, open_.pop(cid), None))
            open_[cid] = n
        elif cid in open_:
            spans.append(CheckSpan(cid, open_.pop(cid), n))
    spans += [CheckSpan(cid, b, None) for cid, b in open_.items()]
    return sorted(spans, key=lambda s: s.begin_line)


def attribute(line: int, spans: list[CheckSpan]) -> str | None:
    """The innermost check whose markers surround `line`."""
    inside = [s for s in spans if s.begin_line < line and (s.end_line is None or line < s.end_line)]
    return max(inside, key=lambda s: s.begin_line).id if inside else None


def classify(log: str, max_lines: int = MAX_REPORT_LINES) -> list[CrashReport]:
    """Every crash report in a kernel log, in order, each attributed to a check if it can be."""
    lines = log.splitlines()
    spans = check_spans(log)
    reports: list[CrashReport] = []
    cur: dict | None = None

    def close() -> None:
        nonlocal cur
        if cur is None:
            return
        body = [_strip(x) for x in cur["lines"]]
        fn, mod = _culprit(cur["header"], body)
        reports.append(
            CrashReport(
                kind=cur["pat"].kind,
                title=_title(cur["pat"], cur["m"], fn, mod),
                header=cur["header"],
                excerpt="\n".join(x.rstrip("\r") for x in cur["lines"]),
                line=cur["line"],
                fatal=cur["pat"].fatal or cur["fatal"],
                function=fn,
                module=mod,
                check=attribute(cur["line"], spans),
            )
        )
        cur = None

    for n, raw in enumerate(lines, 1):
        text = _strip(raw)
        if cur is not None and _CHECK_MARK.search(text):
            close()
        hit = _match(text)
        if hit and (cur is None or (hit[0].kind == "panic" and cur["pat"].kind != "panic")):
            close()
            pat, m = hit
            cur = {"pat": pat, "m": m, "header": text, "line": n, "lines": [], "fatal": False}
        elif hit and cur is not None and hit[0].fatal:
            cur["fatal"] = True  # e.g. the Oops line under a BUG: header
        if cur is None:
            continue
        cur["lines"].append(raw)
        own_end = cur["pat"].end
        if _END.search(text) or (own_end and n > cur["line"] and own_end.search(text)) or len(cur["lines"]) >= max_lines:
            close()
    close()
    return _merge_repeats(reports)


def what_killed(log: str) -> str:
    """How a dead guest died, from its console: the title of its first fatal report (the
    oops that names the function) and, when the kernel then panicked, the panic's line;
    else the title of its last report; "" when it holds none."""
    reports = classify(log)
    fatal = next((r for r in reports if r.fatal), None)
    if fatal is None:
        return reports[-1].title if reports else ""
    last = reports[-1]
    return fatal.title if last is fatal or last.kind != "panic" else f"{fatal.title} → {last.title}"


_HUNG_TASK = re.compile(r"INFO: task (\S+:\d+) blocked")


def _merge_repeats(reports: list[CrashReport]) -> list[CrashReport]:
    """khungtaskd reports the same blocked task on every scan: keep the first report per
    (task:pid, culprit), with its count and " (reported N times)" in the title."""
    out: list[CrashReport] = []
    seen: dict[tuple, int] = {}
    for rep in reports:
        m = _HUNG_TASK.search(rep.header) if rep.kind == "hung-task" else None
        if m is None:
            out.append(rep)
            continue
        key = (m.group(1), rep.function, rep.module)
        if key not in seen:
            seen[key] = len(out)
            out.append(rep)
            continue
        first = out[seen[key]]
        count = first.count + 1
        title = first.title.split(" (reported ")[0] + f" (reported {count} times)"
        out[seen[key]] = replace(first, count=count, title=title)
    return out


# ---------------------------------------------------------------- taint


@dataclass(frozen=True)
class TaintFlag:
    bit: int
    letter: str
    meaning: str


# Documentation/admin-guide/tainted-kernels.rst
TAINT_FLAGS: tuple[TaintFlag, ...] = (
    TaintFlag(0, "P", "proprietary module loaded"),
    TaintFlag(1, "F", "module force loaded"),
    TaintFlag(2, "S", "kernel running on an out of specification system"),
    TaintFlag(3, "R", "module force unloaded"),
    TaintFlag(4, "M", "machine check exception"),
    TaintFlag(5, "B", "bad page referenced or unexpected page flags"),
    TaintFlag(6, "U", "taint requested by userspace"),
    TaintFlag(7, "D", "kernel died recently (OOPS or BUG)"),
    TaintFlag(8, "A", "ACPI table overridden"),
    TaintFlag(9, "W", "kernel issued a warning"),
    TaintFlag(10, "C", "staging driver loaded"),
    TaintFlag(11, "I", "workaround for platform firmware bug"),
    TaintFlag(12, "O", "externally-built (out-of-tree) module loaded"),
    TaintFlag(13, "E", "unsigned module loaded"),
    TaintFlag(14, "L", "soft lockup occurred"),
    TaintFlag(15, "K", "kernel live patched"),
    TaintFlag(16, "X", "auxiliary taint"),
    TaintFlag(17, "T", "built with struct randomization plugin"),
    TaintFlag(18, "N", "in-kernel test (KUnit) module loaded"),
    TaintFlag(19, "J", "userspace used a mutating debug operation in fwctl"),
)
FAILURE_TAINTS = frozenset("DWLB")  # the kernel saw something go wrong
EXPECTED_TAINTS = frozenset("OEN")  # what loading our unsigned out-of-tree (test) module does


@dataclass(frozen=True)
class Taint:
    value: int
    flags: tuple[TaintFlag, ...]  # set bits, known ones
    unknown_bits: tuple[int, ...] = ()

    @property
    def letters(self) -> str:
        return "".join(f.letter for f in self.flags)

    @property
    def failures(self) -> tuple[TaintFlag, ...]:
        return tuple(f for f in self.flags if f.letter in FAILURE_TAINTS)

    @property
    def unexpected(self) -> tuple[TaintFlag, ...]:
        """Set, neither a failure nor what our own module load explains."""
        return tuple(f for f in self.flags if f.letter not in FAILURE_TAINTS | EXPECTED_TAINTS)

    @property
    def failed(self) -> bool:
        return bool(self.failures)


def decode_taint(value: int | str) -> Taint:
    """/proc/sys/kernel/tainted (an integer, as text or not) into flags."""
    if isinstance(value, str):
        value = int(value.strip() or "0", 0)
    if value < 0:
        raise ValueError(f"taint value {value} is negative")
    known = {f.bit: f for f in TAINT_FLAGS}
    flags, unknown = [], []
    bit = 0
    while value >> bit:
        if value >> bit & 1:
            (flags.append(known[bit]) if bit in known else unknown.append(bit))
        bit += 1
    return Taint(value, tuple(flags), tuple(unknown))
