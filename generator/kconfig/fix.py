"""Compute a config fix, apply it to a copy, write it, and check it stuck.

API:

    plan_fix(kconf, wanted) -> FixPlan
        wanted: [(symbol, acceptable values), ...], e.g. [("KPROBES", "y"),
        ("DEBUG_INFO", {"y"}), ("DEBUG_INFO_REDUCED", "n")].  Explains each
        symbol, merges the fixes (a fix that would break another wanted value,
        or pick a second member of the same choice, is left out and reported
        in `conflicts`), and tries the merged assignments on the tree.
    apply_fix(kconf, plan) -> ApplyResult
        Applies plan.assignments to a clone of `kconf` (never `kconf` itself)
        and re-evaluates: `outcomes` per wanted symbol (took effect or why
        not), `fragment` (only the lines that take effect, .config syntax)
        and `scripts_config` (the same as scripts/config commands).
        `result.kconf` is the fixed tree.
    write_fixed_config(result, path=None, in_place=False) -> WriteResult
        Writes the complete fixed .config to `path`.  Refuses to overwrite
        the config it was loaded from unless in_place=True, which first
        copies it to <config>.bak (not .old, which make overwrites).  Then
        loads the written file into a fresh copy of the tree and reports
        which wanted values did not take effect.

All three results are frozen dataclasses with to_dict() for JSON.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kconfiglib

from ..errors import UserError
from .explain import TRI, UNDEFINED, Assignment, Explainer, Explanation, Trial, apply_assignments, explain, normalize_wanted
from .tree import clone, fresh_copy, load_config, menu_order

Wanted = tuple[str, "str | Iterable[str]"]


@dataclass(frozen=True)
class FixPlan:
    wanted: tuple[tuple[str, tuple[str, ...]], ...]
    items: tuple[Explanation, ...]  # one per wanted symbol, same order
    assignments: tuple[Assignment, ...]  # merged, in menu order
    conflicts: tuple[str, ...]  # fixes left out, and why
    expected_failures: tuple[str, ...]  # wanted symbols the merged fix does not satisfy in a trial

    def to_dict(self) -> dict:
        return {
            "wanted": [{"symbol": s, "values": list(v)} for s, v in self.wanted],
            "items": [e.to_dict() for e in self.items],
            "assignments": [{"symbol": s, "value": v} for s, v in self.assignments],
            "conflicts": list(self.conflicts),
            "expected_failures": list(self.expected_failures),
        }


@dataclass(frozen=True)
class Outcome:
    symbol: str
    wanted: tuple[str, ...]
    before: str  # "" when undefined
    after: str
    ok: bool
    reason: str = ""  # why not, when not ok

    def to_dict(self) -> dict:
        return {"symbol": self.symbol, "wanted": list(self.wanted), "before": self.before or None, "after": self.after or None,
                "ok": self.ok, "reason": self.reason or None}


def config_line(name: str, value: str) -> str:
    return f"# CONFIG_{name} is not set" if value == "n" else f"CONFIG_{name}={value}"


def scripts_config_line(name: str, value: str) -> str:
    flag = {"y": "--enable", "m": "--module", "n": "--disable"}[value]
    return f"scripts/config {flag} {name}"


@dataclass(frozen=True)
class ApplyResult:
    plan: FixPlan
    outcomes: tuple[Outcome, ...]
    applied: tuple[Assignment, ...]  # assignments (and choice members switched off) that took effect
    dropped: tuple[tuple[str, str, str], ...]  # (symbol, value, why) for assignments that did not
    kconf: Any = field(default=None, compare=False, repr=False)  # the fixed tree (a CompatKconfig)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def fragment(self) -> str:
        """A config fragment (merge_config.sh, make foo.config) with only lines that take effect."""
        return "".join(config_line(s, v) + "\n" for s, v in self.applied)

    @property
    def scripts_config(self) -> tuple[str, ...]:
        return tuple(scripts_config_line(s, v) for s, v in self.applied)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "applied": [{"symbol": s, "value": v} for s, v in self.applied],
            "dropped": [{"symbol": s, "value": v, "reason": r} for s, v, r in self.dropped],
            "fragment": self.fragment,
            "scripts_config": list(self.scripts_config),
            "plan": self.plan.to_dict(),
        }


@dataclass(frozen=True)
class WriteResult:
    path: str
    backup: str | None  # the copy of the input kept by in_place=True
    outcomes: tuple[Outcome, ...]  # from re-loading `path` in a fresh evaluation
    load_warnings: tuple[str, ...]

    @property
    def not_taken(self) -> tuple[str, ...]:
        return tuple(o.symbol for o in self.outcomes if not o.ok)

    @property
    def ok(self) -> bool:
        return not self.not_taken

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "backup": self.backup,
            "ok": self.ok,
            "not_taken": list(self.not_taken),
            "outcomes": [o.to_dict() for o in self.outcomes],
            "load_warnings": list(self.load_warnings),
        }


def _normalize(wanted: Iterable[Wanted]) -> tuple[tuple[str, frozenset[str]], ...]:
    out = []
    for name, values in wanted:
        name = name[len("CONFIG_") :] if name.startswith("CONFIG_") else name
        out.append((name, normalize_wanted(values)))
    return tuple(out)


def _ordered(values: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(values, key=TRI.index))


def plan_fix(kconf, wanted: Iterable[Wanted]) -> FixPlan:
    """Explain every wanted symbol and merge their fixes into one set of assignments."""
    items = _normalize(wanted)
    explainer = Explainer(kconf)
    explanations = [explainer.explain(name, values) for name, values in items]
    required = dict(items)
    merged: dict[str, str] = {}
    chosen_member: dict[int, str] = {}  # id(choice) -> member set to y
    conflicts: list[str] = []

    def clash(fix: tuple[Assignment, ...]) -> str | None:
        for name, value in fix:
            if name in merged and merged[name] != value:
                return f"{name} would be set to both {merged[name]} and {value}"
            if name in required and value not in _acceptable(kconf, name, required[name]):
                return f"it sets {name}={value}, but {name} is wanted {'/'.join(_ordered(required[name]))}"
            sym = kconf.syms[name]
            if sym.choice and value == "y" and chosen_member.get(id(sym.choice), name) != name:
                return f"{name} and {chosen_member[id(sym.choice)]} are members of the same choice"
        return None

    for exp in explanations:
        if not exp.fix:
            continue
        problems = []
        for fix in (exp.fix, *exp.alternatives):
            problem = clash(fix)
            if problem is None:
                for name, value in fix:
                    merged[name] = value
                    sym = kconf.syms[name]
                    if sym.choice and value == "y":
                        chosen_member[id(sym.choice)] = name
                break
            problems.append(problem)
        else:
            conflicts.append(f"{exp.symbol}: fix left out: {problems[0]}")
    order = menu_order(kconf)
    assignments = tuple(sorted(merged.items(), key=lambda a: order.get(a[0], 1 << 30)))
    trial = Trial(kconf)
    with trial.applied(assignments):
        failures = tuple(name for name, values in items if (_value(kconf, name) or "n") not in _acceptable(kconf, name, values))
    return FixPlan(tuple((n, _ordered(v)) for n, v in items), tuple(explanations), assignments, tuple(conflicts), failures)


def _value(kconf, name: str) -> str:
    sym = kconf.syms.get(name)
    if sym is None or not sym.nodes:
        return ""
    return TRI[sym.tri_value]


def _acceptable(kconf, name: str, wanted: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    # As in explain(): a bool (or any symbol with MODULES off) shows m as y.
    sym = kconf.syms.get(name)
    if sym is not None and sym.nodes and "m" in wanted and sym.type is kconfiglib.BOOL:
        return frozenset(wanted) | {"y"}
    return frozenset(wanted)


def _outcomes(plan: FixPlan, before: dict[str, str], after_kconf) -> tuple[Outcome, ...]:
    out = []
    for (name, wanted), exp in zip(plan.wanted, plan.items):
        after = _value(after_kconf, name)
        ok = (after or "n") in _acceptable(after_kconf, name, wanted)
        reason = ""
        if not ok:
            conflict = next((c for c in plan.conflicts if c.startswith(f"{name}:")), None)
            if exp.kind == UNDEFINED:
                reason = exp.message
            elif conflict:
                reason = conflict
            else:
                reason = explain(after_kconf, name, wanted).message
                clashing = [f"{other}={'/'.join(values)}" for other, values in plan.wanted if other != name and f"{other} (=" in reason]
                if clashing:
                    reason += f"; conflicts with the wanted {', '.join(clashing)}"
        out.append(Outcome(name, wanted, before.get(name, ""), after, ok, reason))
    return tuple(out)


def apply_fix(kconf, plan: FixPlan) -> ApplyResult:
    """Apply `plan` to a copy of `kconf` and see what took effect."""
    fixed = clone(kconf)
    apply_assignments(fixed, plan.assignments)
    applied: list[Assignment] = []
    dropped: list[tuple[str, str, str]] = []
    for name, value in plan.assignments:
        now = _value(fixed, name)
        if now == value:
            applied.append((name, value))
        else:
            dropped.append((name, value, f"{name} stays {now or 'undefined'}: {explain(fixed, name, value).message}"))
    # A member switched off because another member of its choice was picked
    # belongs in the fragment too: otherwise the old "=y" line would compete.
    picked = {name for name, value in applied if value == "y" and fixed.syms[name].choice}
    order = menu_order(fixed)
    for name in picked:
        for member in fixed.syms[name].choice.syms:
            if member.name != name and _value(kconf, member.name) == "y" and _value(fixed, member.name) == "n":
                applied.append((member.name, "n"))
    applied.sort(key=lambda a: order.get(a[0], 1 << 30))
    before = {name: _value(kconf, name) for name, _ in plan.wanted}
    return ApplyResult(plan, _outcomes(plan, before, fixed), tuple(applied), tuple(dropped), fixed)


def _header(kconf) -> str:
    return f"#\n# Automatically generated file; DO NOT EDIT.\n# {kconf.mainmenu_text}\n#\n"


def write_fixed_config(result: ApplyResult, path: str | Path | None = None, in_place: bool = False) -> WriteResult:
    """Write the fixed .config, then re-load it from disk and check the wanted values."""
    kconf = result.kconf
    source = kconf.config_path
    backup = None
    if in_place:
        if source is None:
            raise UserError("error: in_place needs a tree loaded from a config file. Fix: pass an output path.")
        target = Path(source)
    else:
        if path is None:
            raise UserError("error: no output path for the fixed config. Fix: give one, or ask to edit the config in place.")
        target = Path(path)
        if source is not None and target.exists() and os.path.samefile(target, source):
            raise UserError(f"{target}: error: this is the input config; not overwriting it. Fix: write elsewhere, or ask to edit it in place.")
    target.parent.mkdir(parents=True, exist_ok=True)
    if in_place:
        backup = str(target) + ".bak"
        shutil.copy2(target, backup)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        kconf.write_config(tmp, header=_header(kconf), save_old=False)
        if target.exists():
            shutil.copymode(target, tmp)
        else:
            os.chmod(tmp, 0o644)  # mkstemp's 0600 is not what a .config has
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Check what a build would see: the file, in a tree that never saw our set_value calls.
    fresh = fresh_copy(kconf)
    load = load_config(fresh, target)
    outcomes = _outcomes(result.plan, {o.symbol: o.before for o in result.outcomes}, fresh)
    return WriteResult(str(target), backup, outcomes, load.warnings)
