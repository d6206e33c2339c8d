"""A pure, tolerant KTAP parser (Documentation/dev-tools/ktap.rst, version 1).

    KTAP version 1
    1..2
      KTAP version 1          <- subtests: indented by two spaces, their own
      # Subtest: inner           version and plan, before the parent's result
      1..1
      ok 1 leaf
    ok 1 inner
    # some log line           <- diagnostics
    not ok 2 outer # TIMEOUT took too long

Choices, after kunit_tool's parser:
- Lines before the first `KTAP version` (or `TAP version`) line are ignored;
  the prefix in front of it on its line (a printk timestamp, a log level) is
  stripped from the lines that follow by its length, as kunit_tool does, or by
  a timestamp pattern where the width differs.
- Diagnostics (`# ...`) and unknown lines belong to the test whose result line
  follows them: the spec says diagnostics about a test come right before its
  result. Whatever follows the last result belongs to the document.
- A subtest may have no plan (the spec allows it where the count is known only at the
  end, as for a tests/*.sh); the top-level document without one is a problem.
- A test in the plan whose result never arrived is `crashed`; the lines left
  over (the last words of a dying guest) go with the first missing test.
- Results numbered beyond the plan are kept and flagged (`beyond_plan`),
  results out of order are kept and a problem is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Statuses that mean "something is wrong".
FAILING = frozenset({"fail", "timeout", "error", "crashed"})

_VERSION = re.compile(r"^(K?TAP) version (\d+)\s*$")
_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
_RESULT = re.compile(r"^(ok|not ok)\s+(\d+)\s*(?:-\s+)?([^#]*?)\s*(?:#\s*(.*))?$")
_DIRECTIVE = re.compile(r"^(SKIP|TODO|XFAIL|TIMEOUT|ERROR)\b\s*(.*)$", re.I)
_SUBTEST = re.compile(r"^#\s*Subtest:\s*(.*)$")
_BAIL = re.compile(r"^Bail out!\s*(.*)$")
# printk: optional "<6>" level, "[   12.345678]" time, optional "[    T1]" caller id.
_PRINTK_PREFIX = re.compile(r"^(?:<\d+>)?\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])?\s?")
_PREFIX_LIKE = re.compile(r"^(?:<\d+>)?(?:\[[^\]]*\]\s*)*\s*$")


@dataclass(frozen=True)
class KtapTest:
    number: int
    name: str
    ok: bool | None  # None: the result never arrived
    directive: str = ""  # SKIP, TODO, XFAIL, TIMEOUT, ERROR or ''
    reason: str = ""  # text after the directive (or after '#' without one)
    diagnostics: tuple[str, ...] = ()  # '# ' stripped from diagnostic lines
    subtests: KtapDocument | None = None
    line: int = 0  # 1-based line number of the result line in the input (0: none)
    beyond_plan: bool = False

    @property
    def status(self) -> str:
        """pass, fail, skip, todo, xfail, timeout, error or crashed."""
        if self.ok is None:
            return "crashed"
        if self.directive == "SKIP":
            return "skip"
        if self.directive in ("TIMEOUT", "ERROR"):
            return self.directive.lower()
        if self.directive in ("TODO", "XFAIL"):
            return "pass" if self.ok else self.directive.lower()  # an expected failure is no failure
        if self.ok and self.subtests is not None and self.subtests.failed:
            return "fail"  # a parent claiming ok over failing children is not believed
        return "pass" if self.ok else "fail"

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass(frozen=True)
class KtapDocument:
    version: str = ""  # "KTAP version 1", "" if none was seen
    name: str = ""  # from a '# Subtest: name' line (nested documents)
    plan: int | None = None
    plan_reason: str = ""  # "1..0 # SKIP reason"
    tests: tuple[KtapTest, ...] = ()
    diagnostics: tuple[str, ...] = ()  # lines after the last result
    problems: tuple[str, ...] = ()  # what was malformed, one line each

    @property
    def failed(self) -> bool:
        return any(t.failed or t.beyond_plan for t in self.tests)

    @property
    def ok(self) -> bool:
        return bool(self.tests or self.plan == 0) and not self.failed and not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tests:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def test(self, number: int) -> KtapTest | None:
        return next((t for t in self.tests if t.number == number), None)


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    indent: int
    text: str  # without indentation


# ---------------------------------------------------------------- lines


def _lines(text: str) -> list[_Line]:
    """From the first version line on, prefixes stripped, with their indentation."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start, prefix = 0, ""
    for i, line in enumerate(raw):
        m = re.search(r"K?TAP version \d+", line)
        if m:
            start, prefix = i, line[: m.start()]
            break
    # Strip the version line's prefix length from lines with a prefix of the
    # same kind (kunit_tool's rule); else a printk timestamp of any width.
    prefix_like = bool(prefix) and bool(_PREFIX_LIKE.match(prefix))
    out = []
    for i in range(start, len(raw)):
        line = raw[i].rstrip()
        head = line[: len(prefix)]
        if prefix and (head == prefix or (prefix_like and head.strip() and _PREFIX_LIKE.match(head))):
            line = line[len(prefix) :]
        else:
            line = _PRINTK_PREFIX.sub("", line, count=1)
        body = line.lstrip(" ")
        # A tab counts as one level; subtests are meant to use two spaces.
        indent = len(line) - len(body)
        while body.startswith("\t"):
            body, indent = body[1:], indent + 2
        out.append(_Line(i + 1, indent, body))
    return out


# ---------------------------------------------------------------- parsing


@dataclass
class _Block:
    version: str = ""
    plan: int | None = None
    plan_reason: str = ""
    tests: list[KtapTest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # diagnostics awaiting a result
    pending_sub: KtapDocument | None = None
    name_hint: str = ""  # from '# Subtest: name'


def _is_structural(text: str) -> bool:
    return bool(_VERSION.match(text) or _PLAN.match(text) or _RESULT.match(text))


def _complete(b: _Block) -> bool:
    return b.plan is not None and len(b.tests) >= b.plan


def _parse_block(lines: list[_Line], i: int, indent: int, top: bool) -> tuple[KtapDocument, int]:
    b = _Block()
    n = len(lines)
    while i < n:
        ln = lines[i]
        if not ln.text:
            i += 1
            continue
        if ln.indent < indent and (_is_structural(ln.text) or _complete(b)):
            break  # the parent's line (a finished block also yields the parent's diagnostics)
        if ln.indent > indent and (_is_structural(ln.text) or _SUBTEST.match(ln.text)):
            sub, i = _parse_block(lines, i, ln.indent, top=False)
            if b.pending_sub is not None:
                b.problems.append(f"line {ln.number}: a subtest block without a result line of its own")
            b.pending_sub = sub
            continue
        text = ln.text
        if m := _VERSION.match(text):
            if b.version or b.tests or b.plan is not None:
                if top:
                    b.problems.append(f"line {ln.number}: a second KTAP document starts here; ignored")
                    i = n
                break  # a sibling subtest block, or a new document
            b.version = text
            i += 1
            continue
        if m := _PLAN.match(text):
            if b.plan is not None:
                b.problems.append(f"line {ln.number}: a second plan line ({text!r}) ignored")
            else:
                b.plan = int(m.group(1))
                b.plan_reason = (m.group(2) or "").strip()
            i += 1
            continue
        if m := _RESULT.match(text):
            b.tests.append(_result(b, m, ln))
            i += 1
            continue
        if m := _BAIL.match(text):
            b.problems.append(f"line {ln.number}: Bail out! {m.group(1)}".rstrip())
            i += 1
            continue
        if m := _SUBTEST.match(text):
            if not top and (b.tests or b.plan is not None):
                break  # old KUnit style: the next sibling block, without a version line
            b.name_hint = m.group(1).strip()
            i += 1
            continue  # the block's header, no diagnostic
        # Diagnostics ('# ...') and anything unknown (kernel chatter) alike.
        b.pending.append(text[1:].lstrip() if text.startswith("#") else text)
        i += 1
    return _finish(b, top), i


def _result(b: _Block, m: re.Match, ln: _Line) -> KtapTest:
    number = int(m.group(2))
    directive, reason = "", (m.group(4) or "").strip()
    d = _DIRECTIVE.match(reason)
    if d:
        directive, reason = d.group(1).upper(), d.group(2).strip()
    expected = b.tests[-1].number + 1 if b.tests else 1
    if number != expected:
        b.problems.append(f"line {ln.number}: test {number} where test {expected} was expected")
    beyond = b.plan is not None and number > b.plan
    if beyond:
        b.problems.append(f"line {ln.number}: test {number} is beyond the plan 1..{b.plan}")
    test = KtapTest(
        number=number, name=m.group(3).strip(), ok=m.group(1) == "ok", directive=directive,
        reason=reason, diagnostics=tuple(b.pending), subtests=b.pending_sub, line=ln.number,
        beyond_plan=beyond,
    )
    b.pending, b.pending_sub = [], None
    return test


def _finish(b: _Block, top: bool) -> KtapDocument:
    tests = list(b.tests)
    leftover = list(b.pending)
    if b.plan is not None:
        seen = {t.number for t in tests}
        missing = [k for k in range(1, b.plan + 1) if k not in seen]
        for k in missing:
            # The first missing test gets the last words (and an orphan subtest block).
            name = b.pending_sub.name if b.pending_sub is not None else ""
            tests.append(KtapTest(k, name, None, diagnostics=tuple(leftover), subtests=b.pending_sub))
            leftover, b.pending_sub = [], None
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            b.problems.append(f"no result for test {shown} of 1..{b.plan} (crashed or hung?)")
        tests.sort(key=lambda t: t.number)
    elif top and (tests or b.pending_sub is not None):
        b.problems.append("no plan line")  # a subtest may leave it out: its count may be known only at its end
    if b.pending_sub is not None:
        b.problems.append("a subtest block without a result line of its own")
        tests.append(KtapTest((tests[-1].number + 1) if tests else 1, b.pending_sub.name, None, subtests=b.pending_sub))
    if top and not b.version and (tests or b.plan is not None):
        b.problems.insert(0, "no 'KTAP version' line")
    return KtapDocument(b.version, b.name_hint, b.plan, b.plan_reason, tuple(tests), tuple(leftover), tuple(b.problems))


def parse(text: str) -> KtapDocument:
    """Parse the first KTAP document in `text`; never raises on malformed input."""
    lines = _lines(text)
    if not lines:
        return KtapDocument(problems=("no KTAP output",))
    first_indent = min((ln.indent for ln in lines if _is_structural(ln.text)), default=0)
    doc, _ = _parse_block(lines, 0, first_indent, top=True)
    if not doc.tests and doc.plan is None and not doc.version:
        return KtapDocument(diagnostics=doc.diagnostics, problems=("no KTAP output",))
    return doc
