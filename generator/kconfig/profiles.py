"""Profiles: kernel config fragments in kernel_configs/ with `# @` metadata.

`parse_profile()` is pure; `load_profiles()` reads the shipped files.  The
format is described in kernel_configs/README.md.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

LEVELS = ("required", "recommended")
TRISTATE = ("y", "m", "n")
_ASSIGN_RE = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(y|m)\s*$")
_UNSET_RE = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set\s*$")
_ANNOTATION_RE = re.compile(r"^# @(\w+)(.*)$")


@dataclass(frozen=True)
class ProfileOption:
    symbol: str
    level: str  # required | recommended
    accepted: frozenset[str]  # subset of y, m, n ("n" = must be unset)
    why: str
    since: tuple[int, ...] = ()
    until: tuple[int, ...] = ()  # first version without it
    arches: tuple[str, ...] = ()  # SRCARCH names; empty = all
    note: str = ""
    line: int = 0

    @property
    def wanted_text(self) -> str:
        if self.accepted == {"n"}:
            return "unset"
        return " or ".join(v for v in TRISTATE if v in self.accepted)

    def exists_in(self, version: tuple[int, ...], arch: str) -> bool:
        """False when the profile knows the option is absent from that kernel."""
        if self.arches and arch and arch not in self.arches:
            return False
        if version and self.since and version[: len(self.since)] < self.since:
            return False
        if version and self.until and version[: len(self.until)] >= self.until:
            return False
        return True


@dataclass(frozen=True)
class ProfileSetter:
    """A fragment line that is no requirement of its own: it sets `sets`, an option of the
    profile that has no prompt (in the kernels `since`..`until`), for merge_config.sh, where
    a promptless option's own line takes no effect. check-config checks `sets`, not this."""

    symbol: str  # what the line sets, e.g. DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT
    value: str  # y or m
    sets: str  # the profile's option it stands for, e.g. DEBUG_INFO
    why: str
    since: tuple[int, ...] = ()
    until: tuple[int, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    options: tuple[ProfileOption, ...]
    path: str
    setters: tuple[ProfileSetter, ...] = ()


def _version(text: str, where: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(\.\d+){0,2}", text):
        raise UserError(f"{where}: error: bad version '{text}'. Fix: write e.g. since=5.2.")
    return tuple(int(x) for x in text.split("."))


def parse_profile(text: str, name: str, path: str = "") -> Profile:
    where_file = path or f"profile {name}"
    title = ""
    pending: tuple[int, str, dict[str, str]] | None = None
    options: list[ProfileOption] = []
    setters: list[ProfileSetter] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{where_file}:{number}"
        if line.startswith("# title:") and not title:
            title = line.split(":", 1)[1].strip()
            continue
        m = _ANNOTATION_RE.match(line)
        if m:
            level = m.group(1)
            if level not in (*LEVELS, "sets"):
                raise UserError(f"{where}: error: unknown annotation '@{level}'. Fix: use @required, @recommended or @sets.")
            try:
                pairs = dict(p.split("=", 1) for p in shlex.split(m.group(2)))
            except ValueError:
                raise UserError(f"{where}: error: annotation is not key=\"value\" pairs.") from None
            pending = (number, level, pairs)
            continue
        assign = _ASSIGN_RE.match(line)
        unset = _UNSET_RE.match(line)
        if not (assign or unset):
            if pending and line and not line.startswith("#"):
                raise UserError(f"{where}: error: '{line}' is not CONFIG_X=y/m or '# CONFIG_X is not set'.")
            continue
        if pending is None:
            raise UserError(f"{where}: error: option without a '# @required' or '# @recommended' line above it.")
        found = assign or unset
        assert found is not None  # the caller matched one of them
        symbol = found.group(1)
        value = assign.group(2) if assign else "n"
        _, level, pairs = pending
        pending = None
        if level == "sets":
            setters.append(_setter(symbol, assign.group(2) if assign else "", pairs, where, number))
            continue
        unknown = set(pairs) - {"why", "values", "since", "until", "arch", "note"}
        if unknown:
            raise UserError(f"{where}: error: unknown annotation key(s) {sorted(unknown)}.")
        default_accepted = {"y": {"y"}, "m": {"y", "m"}, "n": {"n"}}[value]
        accepted = set(pairs["values"].split(",")) if "values" in pairs else default_accepted
        if not accepted <= set(TRISTATE) or value not in accepted:
            raise UserError(f"{where}: error: values={pairs.get('values')} must be y/m/n and include the line's own value.")
        if not pairs.get("why"):
            raise UserError(f"{where}: error: CONFIG_{symbol} has no why=\"...\".")
        options.append(
            ProfileOption(
                symbol=symbol,
                level=level,
                accepted=frozenset(accepted),
                why=pairs["why"],
                since=_version(pairs["since"], where) if "since" in pairs else (),
                until=_version(pairs["until"], where) if "until" in pairs else (),
                arches=tuple(pairs["arch"].split(",")) if "arch" in pairs else (),
                note=pairs.get("note", ""),
                line=number,
            )
        )
    if not options:
        raise UserError(f"{where_file}: error: profile '{name}' has no options.")
    ours = {o.symbol for o in options}
    for s in setters:
        if s.sets not in ours:
            raise UserError(f"{where_file}:{s.line}: error: @sets symbol={s.sets}: the profile has no such option. "
                            "Fix: name one of its @required or @recommended options.")
    return Profile(name, title or name, tuple(options), path, tuple(setters))


def _setter(symbol: str, value: str, pairs: dict[str, str], where: str, number: int) -> ProfileSetter:
    unknown = set(pairs) - {"symbol", "why", "since", "until"}
    if unknown:
        raise UserError(f"{where}: error: unknown @sets key(s) {sorted(unknown)}.")
    if not value:
        raise UserError(f"{where}: error: an @sets line sets CONFIG_{symbol}=y or =m. Fix: write it so.")
    if not pairs.get("symbol") or not pairs.get("why"):
        raise UserError(f"{where}: error: @sets needs symbol=OPTION (the profile's option it sets) and why=\"...\".")
    return ProfileSetter(symbol, value, pairs["symbol"].removeprefix("CONFIG_"), pairs["why"],
                         _version(pairs["since"], where) if "since" in pairs else (),
                         _version(pairs["until"], where) if "until" in pairs else (), number)


def profiles_dir() -> Path:
    """kernel_configs/, inside the installed package or beside generator/."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "kernel_configs", package.parent / "kernel_configs"):
        if (candidate / "systemtap.config").is_file():
            return candidate
    raise UserError(f"dbgscaffold is installed without kernel_configs/ (looked near {package}); reinstall it.")


def available_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.config"))


def load_profile(name: str) -> Profile:
    path = profiles_dir() / f"{name}.config"
    if not path.is_file():
        import difflib

        names = available_profiles()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UserError(f"error: unknown profile '{name}'.{hint} Fix: use one of: {', '.join(names)}.")
    return parse_profile(path.read_text(encoding="utf-8"), name, str(path))


@dataclass(frozen=True)
class ClassicTracer:
    name: str
    status: str  # tracer | event | removed | framework
    today: str
    config: str = ""
    also: str = ""


def load_tracer_map() -> list[ClassicTracer]:
    data = tomllib.loads((profiles_dir() / "ftrace-tracers.toml").read_text(encoding="utf-8"))
    return [ClassicTracer(**row) for row in data["tracer"]]
