"""Why a symbol does not have the value a profile wants, and what would fix it.

API:

    explain(kconf, symbol, wanted) -> Explanation

`kconf` is a loaded tree (`tree.load_tree`, usually with a .config);
`wanted` is the set of acceptable values, e.g. {"y"}, {"y", "m"}, or {"n"}
for "must be unset" (a string such as "y" or "ym" works too).

Explanation.kind is one of

    ok          the symbol already has an acceptable value
    undefined   no such symbol in this kernel version / architecture, or it
                depends on symbols this arch never defines (MMIOTRACE on
                arm64; "depends on ARCH_ROCKCHIP || COMPILE_TEST" on x86)
    settable    it has a visible prompt; the user just has to set it
    blocked     it has a prompt, but its dependencies hide it or cap its value;
                `depends`/`unmet` show the expression with each symbol's value,
                `causes` go on recursively down to symbols the user can set
    promptless  no prompt: only a select, a default or a choice can change it;
                `selected_by` names the selectors
    forced      it must be unset but a select keeps it on; `selected_by`
                names who selects it

and `fix` is a list of (symbol, value) assignments that were tried on the
tree and make the symbol acceptable (`fix_works`); a promptless symbol is
never assigned itself, a choice is set through its member.  `alternatives`
holds other fixes that work too; `causes` explain the symbols in `fix`'s
path (e.g. PREEMPT_TRACER -> PREEMPTION -> PREEMPT_BUILD -> PREEMPT).
Without a fix, `causes` show the dependencies nothing could satisfy and the
message says where that chain ends.  A fix never switches on COMPILE_TEST.
`explain` raises ValueError for string/int/hex symbols.

Trials set user values on `kconf` and restore them exactly; `kconf` is
unchanged when explain() returns.  Not thread-safe on the same `kconf`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import kconfiglib
from kconfiglib import AND, BOOL, EQUAL, NOT, OR, TRISTATE, UNEQUAL, Choice, Symbol, expr_str, expr_value, split_expr

OK = "ok"
UNDEFINED = "undefined"
SETTABLE = "settable"
BLOCKED = "blocked"
PROMPTLESS = "promptless"
FORCED = "forced"

TRI = ("n", "m", "y")
MAX_DEPTH = 8  # dependency chains in the kernel are rarely deeper than 4
MAX_ALTS = 6  # fixes kept per symbol
MAX_COMBOS = 12  # requirement combinations tried per symbol
# Never switched on by a fix: COMPILE_TEST builds drivers for hardware the
# machine cannot have; "depends on ARCH_FOO || COMPILE_TEST" means "not here".
NEVER_ENABLE = frozenset({"COMPILE_TEST"})

Assignment = tuple[str, str]


@dataclass(frozen=True)
class Explanation:
    symbol: str
    wanted: tuple[str, ...]  # acceptable values, sorted n < m < y
    current: str  # "n", "m", "y"; "" when undefined
    kind: str
    message: str  # one line, for people
    type: str = ""  # bool, tristate...
    prompt: str | None = None
    locations: tuple[str, ...] = ()  # file:line of each definition
    depends: str | None = None  # e.g. "PREEMPTION (=n) && FTRACE (=y)"
    unmet: tuple[str, ...] = ()  # the conjuncts of `depends` that fail
    selected_by: tuple[str, ...] = ()  # e.g. "DEBUG_INFO_DWARF4 (=n)"
    choice: str | None = None  # prompt of the choice involved, if any
    fix: tuple[Assignment, ...] = ()
    fix_works: bool = False  # fix was tried on the tree and gives a wanted value
    alternatives: tuple[tuple[Assignment, ...], ...] = ()
    causes: tuple[Explanation, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def chain(self) -> tuple[str, ...]:
        """Symbols from this one down the first cause, e.g. (PREEMPT_TRACER, PREEMPTION, PREEMPT_BUILD, PREEMPT)."""
        out = [self.symbol]
        node = self
        while node.causes:
            node = node.causes[0]
            out.append(node.symbol)
        return tuple(out)

    def to_dict(self) -> dict:
        return {
            "symbol": self.symbol,
            "wanted": list(self.wanted),
            "current": self.current or None,
            "kind": self.kind,
            "message": self.message,
            "type": self.type or None,
            "prompt": self.prompt,
            "locations": list(self.locations),
            "depends": self.depends,
            "unmet": list(self.unmet),
            "selected_by": list(self.selected_by),
            "choice": self.choice,
            "fix": [{"symbol": s, "value": v} for s, v in self.fix],
            "fix_works": self.fix_works,
            "alternatives": [[{"symbol": s, "value": v} for s, v in alt] for alt in self.alternatives],
            "chain": list(self.chain),
            "causes": [c.to_dict() for c in self.causes],
            "notes": list(self.notes),
        }


def normalize_wanted(wanted: str | Iterable[str]) -> frozenset[str]:
    values = frozenset(c for c in wanted if c not in " ,|/") if isinstance(wanted, str) else frozenset(wanted)
    bad = values - set(TRI)
    if not values or bad:
        raise ValueError(f"wanted values must be some of n, m, y; got {sorted(values)!r}")
    return values


def explain(kconf: kconfiglib.Kconfig, symbol: str, wanted: str | Iterable[str]) -> Explanation:
    """Explain `symbol` against `wanted` in the loaded tree `kconf`."""
    return Explainer(kconf).explain(symbol, normalize_wanted(wanted))


# --------------------------------------------------------------------------
# Formatting


def _locs(item) -> tuple[str, ...]:
    return tuple(f"{n.filename}:{n.linenr}" for n in item.nodes)


def _prompt(item) -> str | None:
    return next((n.prompt[0] for n in item.nodes if n.prompt), None)


def _is_number(name: str) -> bool:
    try:
        int(name, 0)
        return True
    except ValueError:
        return False


def sc_str(sc) -> str:
    """A symbol or choice in an expression, with its current value."""
    if sc.__class__ is Choice:
        return f'<choice "{_prompt(sc) or sc.name or "?"}"> (={sc.str_value})'
    if sc.is_constant:
        return kconfiglib.standard_sc_expr_str(sc)
    if not sc.nodes:
        return sc.name if _is_number(sc.name) else f"{sc.name} (undefined)"
    value = sc.str_value
    return f"{sc.name} (={value if value != '' else chr(34) * 2})"


def expr_with_values(expr) -> str:
    return expr_str(expr, sc_str)


def _arch_missing(sym) -> list[str]:
    """Undefined symbols (or n) that every definition of `sym` depends on.

    E.g. MMIOTRACE on arm64 depends on HAVE_MMIOTRACE_SUPPORT, which only
    arch/x86 defines: the symbol exists but can never be enabled there.
    COMPILE_TEST counts as absent (see NEVER_ENABLE).
    """
    missing: list[str] = []
    for term in split_expr(sym.direct_dep, AND):
        if expr_value(term) or _has_not(term):
            continue
        items = kconfiglib.expr_items(term)
        if all(_absent(i) or (i.__class__ is Symbol and i.name in NEVER_ENABLE) for i in items):
            # e.g. "ARM || ARM64" or "ARCH_ROCKCHIP || COMPILE_TEST" on x86:
            # nothing a fix may touch can make it true
            missing.extend(sorted(i.name for i in items if _absent(i) and i.name != "n") or ["n"])
    return missing


def _absent(item) -> bool:
    """An undefined symbol, or the constant n."""
    return item.__class__ is Symbol and not item.nodes and (not item.is_constant or item.name == "n")


def _has_not(expr) -> bool:
    if expr.__class__ is not tuple:
        return False
    if expr[0] is NOT:
        return True
    return expr[0] in (AND, OR) and (_has_not(expr[1]) or _has_not(expr[2]))


def _cur(sym) -> str:
    return TRI[sym.tri_value]


# --------------------------------------------------------------------------
# Trials: set user values, look, put everything back


class Trial:
    def __init__(self, kconf):
        self.kconf = kconf

    @contextmanager
    def applied(self, fix: Iterable[Assignment]) -> Iterator[None]:
        kconf = self.kconf
        syms = [kconf.syms[name] for name, _ in fix]
        saved_syms = [(s, s.user_value, s._was_set) for s in syms]
        choices = {s.choice for s in syms if s.choice}
        saved_choices = [(c, c.user_value, c.user_selection, c._was_set) for c in choices]
        n_warnings = len(kconf.warnings)
        try:
            apply_assignments(kconf, fix)
            yield
        finally:
            for sym, value, was_set in saved_syms:
                sym.user_value, sym._was_set = value, was_set
            for choice, value, selection, was_set in saved_choices:
                choice.user_value, choice.user_selection, choice._was_set = value, selection, was_set
            for sym, _, _ in saved_syms:
                sym._rec_invalidate()
            for choice, *_ in saved_choices:
                choice._rec_invalidate()
            del kconf.warnings[n_warnings:]

    def works(self, fix: tuple[Assignment, ...], checks: Iterable[tuple[Symbol, frozenset[str]]]) -> bool:
        with self.applied(fix):
            return all(_cur(sym) in wanted for sym, wanted in checks)


def apply_assignments(kconf, fix: Iterable[Assignment]) -> None:
    """set_value each (symbol, value); a choice member set to y also sets its choice to y,
    as loading a .config does."""
    for name, value in fix:
        sym = kconf.syms[name]
        if sym.choice and value in ("y", "m"):
            sym.choice.set_value(value)
        sym.set_value(value)


# --------------------------------------------------------------------------
# Requirements: which symbol values make an expression fall in [lo, hi]

Req = tuple[Symbol, frozenset]  # symbol must take one of the values
ReqSet = tuple[Req, ...]


def _merge(a: ReqSet, b: ReqSet) -> ReqSet | None:
    out = dict(a)
    for sym, values in b:
        if sym in out:
            values = out[sym] & values
            if not values:
                return None
        out[sym] = values
    return tuple(out.items())


def _product(left: list[ReqSet], right: list[ReqSet]) -> list[ReqSet]:
    out = []
    for a, b in itertools.product(left, right):
        merged = _merge(a, b)
        if merged is not None and merged not in out:
            out.append(merged)
        if len(out) >= MAX_COMBOS:
            break
    return out


def _union(left: list[ReqSet], right: list[ReqSet]) -> list[ReqSet]:
    out = list(left)
    for r in right:
        if r not in out:
            out.append(r)
    return sorted(out, key=len)[:MAX_COMBOS]


def requirements(expr, lo: int, hi: int = 2) -> list[ReqSet]:
    """Ways to make expr_value(expr) land in [lo, hi], as sets of symbol requirements.

    [()] means it already does; [] means no way we know of (constants,
    undefined symbols, int/string comparisons).  Raising an expression only
    looks at its lower bound: trials catch the rare overshoot.
    """
    value = expr_value(expr)
    if lo <= value <= hi:
        return [()]
    if expr.__class__ is Symbol:
        if expr.is_constant or not expr.nodes or expr.orig_type not in (BOOL, TRISTATE):
            return []
        if lo > value and expr.name in NEVER_ENABLE:
            return []
        return [((expr, frozenset(TRI[lo : hi + 1])),)]
    if expr.__class__ is Choice:
        if value > hi:
            return []  # we never switch a choice off
        out: list[ReqSet] = []
        for node in expr.nodes:
            if node.prompt:
                out = _union(out, requirements(node.prompt[1], lo))
        return out
    op = expr[0]
    if op is NOT:
        return requirements(expr[1], 2 - hi, 2 - lo)
    if op is AND:
        if value < lo:
            return _product(requirements(expr[1], lo), requirements(expr[2], lo))
        return _union(requirements(expr[1], 0, hi), requirements(expr[2], 0, hi))
    if op is OR:
        if value < lo:
            return _union(requirements(expr[1], lo), requirements(expr[2], lo))
        return _product(requirements(expr[1], 0, hi), requirements(expr[2], 0, hi))
    if op in (EQUAL, UNEQUAL):
        # SYM = y / SYM != n and friends; other comparisons are left to the user.
        a, b = expr[1], expr[2]
        if a.is_constant and not b.is_constant:
            a, b = b, a
        if b.is_constant and b.name in TRI and a.__class__ is Symbol and a.nodes and a.orig_type in (BOOL, TRISTATE):
            want_true = lo > 0
            equal = want_true == (op is EQUAL)
            values = frozenset({b.name}) if equal else frozenset(TRI) - {b.name}
            return [((a, values),)]
    return []


# --------------------------------------------------------------------------
# The explainer


@dataclass
class _Alt:
    fix: tuple[Assignment, ...]
    causes: tuple[Explanation, ...] = ()
    works: bool = False


@dataclass
class _Result:
    base: Explanation  # without fix/causes
    alts: list[_Alt] = field(default_factory=list)

    def explanation(self, index: int = 0) -> Explanation:
        working = [a for a in self.alts if a.works]
        if not working:
            return self.base
        chosen = working[index]
        others = tuple(a.fix for i, a in enumerate(working) if i != index)
        return replace(self.base, fix=chosen.fix, fix_works=True, causes=chosen.causes, alternatives=others)


def _merge_fix(*fixes: tuple[Assignment, ...]) -> tuple[Assignment, ...] | None:
    out: dict[str, str] = {}
    for fix in fixes:
        for name, value in fix:
            if out.get(name, value) != value:
                return None
            out[name] = value
    return tuple(out.items())


def _choice_conflict(kconf, fix: tuple[Assignment, ...]) -> bool:
    seen: dict[object, str] = {}
    for name, value in fix:
        sym = kconf.syms[name]
        if sym.choice and value == "y":
            if seen.setdefault(id(sym.choice), name) != name:
                return True
    return False


class Explainer:
    def __init__(self, kconf):
        self.kconf = kconf
        self.trial = Trial(kconf)
        self.memo: dict[tuple[str, frozenset], _Result] = {}
        self.stack: list[str] = []
        self.order: dict[str, int] | None = None

    def explain(self, name: str, wanted: frozenset[str]) -> Explanation:
        return self.result(name, wanted).explanation()

    def _menu_pos(self, sym) -> int:
        if self.order is None:
            from .tree import menu_order

            self.order = menu_order(self.kconf)
        return self.order.get(sym.name, 1 << 30)

    # -- per symbol ---------------------------------------------------------

    def result(self, name: str, wanted: frozenset[str]) -> _Result:
        key = (name, wanted)
        if key in self.memo:
            return self.memo[key]
        if name in self.stack or len(self.stack) >= MAX_DEPTH:
            # A cycle or a very deep chain: no fix from here, and not memoized
            # since another path may get further.
            return _Result(Explanation(name, tuple(sorted(wanted, key=TRI.index)), "", BLOCKED, f"{name}: dependency chain too deep or circular"))
        self.stack.append(name)
        try:
            result = self._analyze(name, wanted)
        finally:
            self.stack.pop()
        self.memo[key] = result
        return result

    def _analyze(self, name: str, wanted: frozenset[str]) -> _Result:
        kconf = self.kconf
        ordered = tuple(sorted(wanted, key=TRI.index))
        sym = kconf.syms.get(name)
        version = getattr(getattr(kconf, "source_tree", None), "version", None)
        where = f"Linux {version}" if version else "this kernel"
        arch = getattr(kconf, "arch", None)
        if arch:
            where += f" for {arch}"
        if sym is None or not sym.nodes:
            base = Explanation(name, ordered, "", UNDEFINED, f"{name} is not defined in {where}")
            if "n" in wanted:
                return _Result(replace(base, kind=OK, current="n", message=f"{name} is not defined in {where}, so it is unset as wanted"),
                               [_Alt((), works=True)])
            return _Result(base)
        if name in getattr(kconf, "transitional", ()):
            heirs = [s.name for s in kconf.unique_defined_syms if any(d is sym for d, _ in s.defaults)]
            note = f"; it only carries old configs over to {', '.join(heirs)}" if heirs else ""
            return _Result(Explanation(name, ordered, "", UNDEFINED, f"{name} is transitional (renamed) in {where}{note}",
                                       notes=tuple(f"use {h}" for h in heirs)))
        if sym.orig_type not in (BOOL, TRISTATE):
            raise ValueError(f"{name} is a {kconfiglib.TYPE_TO_STR[sym.orig_type]} symbol; only bool and tristate symbols take n/m/y")

        notes: list[str] = []
        if "m" in wanted and "y" not in wanted and (sym.type is BOOL):
            # A bool (or a tristate with MODULES off) shows m as y.
            wanted = wanted | {"y"}
            notes.append(f"{name} cannot be m here (bool, or modules off); y accepted instead")
        cur = _cur(sym)
        base = Explanation(
            name, ordered, cur, OK, "", type=kconfiglib.TYPE_TO_STR[sym.orig_type], prompt=_prompt(sym), locations=_locs(sym),
            depends=None if sym.direct_dep is kconf.y else expr_with_values(sym.direct_dep),
            choice=_prompt(sym.choice) if sym.choice else None, notes=tuple(notes),
        )  # fmt: skip
        if cur in wanted:
            return _Result(replace(base, message=f"{name}={cur} (wanted {'/'.join(ordered)})"), [_Alt((), works=True)])
        if TRI.index(max(wanted, key=TRI.index)) > TRI.index(cur):
            missing = _arch_missing(sym)
            if missing:
                names = ", ".join(missing)
                return _Result(replace(base, kind=UNDEFINED, unmet=tuple(missing),
                    message=f"{name} is not available in {where}: it depends on {names}, "
                    f"which {'is' if len(missing) == 1 else 'are'} not defined there"))  # fmt: skip
            return self._raise(sym, wanted, base)
        return self._lower(sym, wanted, base)

    def _finish(self, sym, wanted, base: Explanation, candidates: list[_Alt], failures: Sequence[Explanation] = ()) -> _Result:
        """Try candidates in order; keep those that work, shortest first."""
        seen = []
        working: list[_Alt] = []
        tried = 0
        for alt in candidates:
            if alt.fix in seen or _choice_conflict(self.kconf, alt.fix):
                continue
            seen.append(alt.fix)
            tried += 1
            if tried > MAX_COMBOS * 2:
                break
            if alt.fix and self.trial.works(alt.fix, [(sym, wanted)]):
                alt.works = True
                working.append(alt)
        working.sort(key=lambda a: len(a.fix))
        result = _Result(base, working[:MAX_ALTS])
        if not working:
            why = ""
            if failures:
                root = failures[0]
                while root.causes:
                    root = root.causes[0]
                why = f"; it ends at {root.message.split('; no combination')[0]}"
            result.base = replace(base, message=base.message + "; no combination of settable symbols found that fixes it" + why, causes=tuple(failures[:3]))
        return result

    def _combine(self, reqsets: list[ReqSet], own: tuple[Assignment, ...] = ()) -> tuple[list[_Alt], list[Explanation]]:
        """Alternatives from requirement sets: each requirement solved recursively.

        Also returns the requirements nothing could satisfy, so that an
        explanation without a fix can still say where the chain ends.
        """
        out: list[_Alt] = []
        failures: list[Explanation] = []
        for reqset in reqsets:
            per_req: list[list[_Alt]] = []
            causes_per_req: list[list[Explanation]] = []
            for req_sym, req_values in reqset:
                res = self.result(req_sym.name, req_values)
                working = [a for a in res.alts if a.works]
                if not working:
                    if all(f.symbol != req_sym.name for f in failures):
                        failures.append(res.explanation())
                    per_req = []
                    break
                per_req.append(working[:3])
                causes_per_req.append([res.explanation(i) for i in range(len(working[:3]))])
            else:
                if not reqset:
                    out.append(_Alt(own))
                    continue
            if not per_req:
                continue
            for combo in itertools.islice(itertools.product(*[range(len(p)) for p in per_req]), MAX_COMBOS):
                fix = _merge_fix(*(per_req[i][j].fix for i, j in enumerate(combo)), own)
                if fix is None:
                    continue
                causes = tuple(causes_per_req[i][j] for i, j in enumerate(combo) if per_req[i][j].fix)
                out.append(_Alt(fix, causes))
        return out, failures

    def _target(self, sym, wanted: frozenset[str]) -> str:
        # A tristate that may be a module becomes one: smaller vmlinux, same feature.
        if "m" in wanted and sym.orig_type is TRISTATE and self.kconf.modules.tri_value == 2:
            return "m"
        return "y" if "y" in wanted else "m"

    # -- wanting a higher value -------------------------------------------

    def _raise(self, sym, wanted, base: Explanation) -> _Result:
        name = sym.name
        need = 1 if "m" in wanted else 2
        target = self._target(sym, wanted)
        prompts = [n for n in sym.nodes if n.prompt]
        assignable = {TRI[v] for v in sym.assignable}
        if prompts:
            own = ((name, target),)
            if assignable & wanted:
                if target not in assignable:
                    own = ((name, max(assignable & wanted, key=TRI.index)),)
                base = replace(base, kind=SETTABLE, message=f"{name} is {base.current}; set {own[0][0]}={own[0][1]}")
                return self._finish(sym, wanted, base, [_Alt(own)])
            # Visible conditions of the prompt(s) hold it down.
            cond = prompts[0].prompt[1]
            for node in prompts[1:]:
                cond = (OR, cond, node.prompt[1])
            unmet = tuple(expr_with_values(t) for t in split_expr(prompts[0].prompt[1], AND) if expr_value(t) < need)
            shown = base.depends or expr_with_values(cond)
            loc = base.locations[0] if base.locations else ""
            base = replace(
                base, kind=BLOCKED, depends=shown, unmet=unmet,
                message=f"{name} is {base.current} and cannot be set: depends on {shown} ({loc})"
                + (f"; unmet: {', '.join(unmet)}" if unmet else ""),
            )  # fmt: skip
            candidates, failures = self._combine(requirements(cond, need), own)
            return self._finish(sym, wanted, base, candidates, failures)
        # No prompt: only selects, defaults and implies move it.
        terms = [t for t in split_expr(sym.rev_dep, OR) if t is not self.kconf.n]
        selectors = [self._selector(t) for t in terms]
        choices = {s.choice for s in selectors if s is not None and s.choice}
        choice_note = ""
        if choices:
            choice_note = " (choice " + ", ".join(f'"{_prompt(c)}"' for c in choices) + ")"
        selected_by = tuple(sc_str(s) for s in selectors if s is not None)
        by = ", ".join(s.name for s in selectors if s)
        message = f"{name} has no prompt" + (f"; it is selected by {by}{choice_note}" if selected_by else "; only defaults set it")
        base = replace(base, kind=PROMPTLESS, selected_by=selected_by,
                       message=message, choice=base.choice or (_prompt(next(iter(choices))) if len(choices) == 1 else None))
        ranked = sorted(zip(terms, selectors), key=lambda ts: self._selector_rank(ts[1]))
        reqsets: list[ReqSet] = []
        for term, _ in ranked[: MAX_COMBOS]:
            reqsets.extend(r for r in requirements(term, need) if r not in reqsets)
        for default, cond in sym.defaults:
            reqsets.extend(r for r in requirements((AND, default, cond), need) if r not in reqsets)
        for term in split_expr(sym.weak_rev_dep, OR):
            if term is not self.kconf.n:
                reqsets.extend(r for r in requirements((AND, term, sym.direct_dep), need) if r not in reqsets)
        candidates, failures = self._combine(reqsets)
        return self._finish(sym, wanted, base, candidates, failures)

    @staticmethod
    def _selector(term):
        first = term
        while first.__class__ is tuple and first[0] is AND:
            first = first[1]
        return first if first.__class__ is Symbol else None

    def _selector_rank(self, sel):
        if sel is None:
            return (3, 0)
        # Settable selectors first, then choice members, in menu order.
        visible = sel.visibility > 0
        return (0 if visible else 1 if sel.choice else 2, self._menu_pos(sel))

    # -- wanting a lower value (usually: must be unset) -------------------

    def _lower(self, sym, wanted, base: Explanation) -> _Result:
        name = sym.name
        hi = max(TRI.index(v) for v in wanted)
        target = TRI[hi]
        candidates: list[_Alt] = []
        if sym.choice and base.current == "y":
            others = [s for s in sym.choice.syms if s is not sym and s.visibility]
            default_first = sorted(others, key=lambda s: (0 if any(d is s and expr_value(c) for d, c in sym.choice.defaults) else 1, self._menu_pos(s)))
            base = replace(base, kind=SETTABLE, message=f'{name} is the selected member of the choice "{base.choice}"; select another member')
            candidates = [_Alt(((s.name, "y"),)) for s in default_first]
            return self._finish(sym, wanted, base, candidates)
        active = [t for t in split_expr(sym.rev_dep, OR) if expr_value(t) > hi]
        own: tuple[Assignment, ...] = ((name, target),) if any(n.prompt for n in sym.nodes) else ()
        if active:
            selectors = [self._selector(t) for t in active]
            selected_by = tuple(sc_str(s) for s in selectors if s is not None)
            base = replace(base, kind=FORCED,
                           selected_by=selected_by, message=f"{name} is {base.current}, forced by select from {', '.join(selected_by) or '?'}")
            reqsets: list[ReqSet] = [()]
            for term in active:
                reqsets = _product(reqsets, requirements(term, 0, hi))
            candidates, failures = self._combine(reqsets, own)
            return self._finish(sym, wanted, base, candidates, failures)
        if own and sym.visibility:
            base = replace(base, kind=SETTABLE, message=f"{name} is {base.current}; set {name}={target}")
            return self._finish(sym, wanted, base, [_Alt(own)])
        # Promptless, on by a default or an imply: switch off what turns it on.
        base = replace(base, kind=PROMPTLESS, message=f"{name} is {base.current} by default (no prompt); only its dependencies can turn it off")
        reqsets = []
        for default, cond in sym.defaults:
            if expr_value(cond):
                reqsets = _union(requirements(cond, 0, hi), requirements(default, 0, hi))
                break
        for term in split_expr(sym.weak_rev_dep, OR):
            if expr_value(term) > hi:
                reqsets = _product(reqsets or [()], requirements(term, 0, hi))
        reqsets = _union(reqsets, requirements(sym.direct_dep, 0, hi))
        candidates, failures = self._combine(reqsets, own)
        return self._finish(sym, wanted, base, candidates, failures)
