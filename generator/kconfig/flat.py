"""The flat check: each profile option against the values in a .config.

Pure: DotConfig + profiles in, OptionResults out.  Without a Kconfig tree an
absent option cannot be told apart (not in this kernel, or hidden by an unmet
dependency); the message says so and the tree analysis (tree.py) settles it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dotconfig import DotConfig
from .profiles import Profile, ProfileOption

OK, FAIL, NOT_IN_KERNEL = "ok", "fail", "not-in-kernel"


@dataclass(frozen=True)
class OptionResult:
    profile: str
    option: ProfileOption
    actual: str | None  # y, m, n, a raw value, or None when absent from the config
    status: str  # ok | fail | not-in-kernel
    reason: str  # one line: why it fails, or what "not in kernel" means
    explanation: object = None  # a tree.Explanation once the Kconfig tree was consulted
    fix: tuple[tuple[str, str], ...] = field(default=())  # (symbol, value) assignments

    @property
    def symbol(self) -> str:
        return self.option.symbol

    @property
    def failed_required(self) -> bool:
        return self.status == FAIL and self.option.level == "required"


def actual_text(actual: str | None) -> str:
    if actual is None:
        return "absent"
    return "not set" if actual == "n" else actual


def check_option(config: DotConfig, profile: str, option: ProfileOption) -> OptionResult:
    actual = config.get(option.symbol)
    tristate = "n" if actual is None else actual
    if not option.exists_in(config.version, config.arch):
        why = f"not in this kernel ({_where(option)})"
        return OptionResult(profile, option, actual, NOT_IN_KERNEL, why)
    if tristate in option.accepted:
        return OptionResult(profile, option, actual, OK, "")
    if actual is None:
        reason = "absent from the config: not defined for this kernel/arch, or hidden by an unmet dependency"
    elif option.accepted == {"n"}:
        reason = f"is {actual} but must be unset"
    else:
        reason = f"is {actual_text(actual)}, needs {option.wanted_text}"
    return OptionResult(profile, option, actual, FAIL, reason)


def _where(option: ProfileOption) -> str:
    parts = []
    if option.since:
        parts.append("since " + ".".join(map(str, option.since)))
    if option.until:
        parts.append("until " + ".".join(map(str, option.until)))
    if option.arches:
        parts.append("only " + ",".join(option.arches))
    return "; ".join(parts) or "per profile"


def check_flat(config: DotConfig, profiles: list[Profile]) -> list[OptionResult]:
    return [check_option(config, p.name, o) for p in profiles for o in p.options]


def run_status(results: list[OptionResult], strict: bool = False) -> int:
    """0 when every required option holds (and, with strict, every one), else 1."""
    failed = [r for r in results if r.status == FAIL and (strict or r.option.level == "required")]
    return 1 if failed else 0
