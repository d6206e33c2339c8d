"""Read a kernel .config (plain or gzip) into a DotConfig.

`parse_dotconfig()` is pure and tolerant, as kconfig itself is: unknown lines
are warnings with their line numbers, a symbol given twice keeps its last
value (kconfig's rule) with a warning naming both lines, CRLF is read as LF.
Only input that is not a kernel config at all is an error.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..inputs import read_input
from ..kernels import parse_makefile_version

_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_UNSET_RE = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set\s*$")
_HEADER_RE = re.compile(r"^# Linux/(?P<arch>\S+) (?P<version>\d+\.\d+(?:\.\d+)?)\S* Kernel Configuration")
MAX_BYTES = 64 * 1024 * 1024  # a real .config is ~300 KB; refuse absurd input


@dataclass(frozen=True)
class ConfigValue:
    symbol: str  # without CONFIG_
    value: str  # "y", "m", "n" (is not set), or the raw string/int/hex text
    line: int


@dataclass(frozen=True)
class DotConfig:
    source: str
    values: dict[str, ConfigValue]
    version: tuple[int, ...] = ()  # from the header, e.g. (6, 1, 192)
    arch: str = ""  # from the header, e.g. "x86"
    warnings: tuple[str, ...] = field(default=())

    def get(self, symbol: str) -> str | None:
        """'y', 'm', 'n' (explicitly not set), a raw value, or None if absent."""
        found = self.values.get(symbol)
        return found.value if found else None

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def parse_dotconfig(text: str, source: str = ".config") -> DotConfig:
    values: dict[str, ConfigValue] = {}
    warnings: list[str] = []
    version: tuple[int, ...] = ()
    arch = ""
    if "\r\n" in text:
        warnings.append(f"{source}: CRLF line endings, read as LF")
    garbage: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        symbol = value = None
        if line.startswith("CONFIG_"):  # the common case, without a regex
            name, eq, rest = line[7:].partition("=")
            if eq and _NAME_RE.fullmatch(name):
                symbol, value = name, rest.strip()
            else:
                garbage.append(number)
                continue
        elif (m := _UNSET_RE.match(line)) is not None:
            symbol, value = m.group(1), "n"
        elif line.startswith("#"):
            h = _HEADER_RE.match(line)
            if h and not version:
                arch = h["arch"]
                version = tuple(int(x) for x in h["version"].split("."))
            continue
        else:
            garbage.append(number)
            continue
        previous = values.get(symbol)
        if previous is not None and previous.value != value:
            warnings.append(
                f"{source}:{number}: CONFIG_{symbol} given again (line {previous.line}: {previous.value}, "
                f"line {number}: {value}); the last one wins, as in kconfig"
            )
        values[symbol] = ConfigValue(symbol, value, number)
    if garbage:
        shown = ", ".join(map(str, garbage[:10])) + (f" and {len(garbage) - 10} more" if len(garbage) > 10 else "")
        warnings.append(f"{source}: ignored {len(garbage)} line(s) that are not kconfig syntax: line {shown}")
    if not values:
        raise UserError(
            f"{source}: error: not a kernel config (no CONFIG_ lines). "
            "Fix: pass a .config, /proc/config.gz or /boot/config-<release>."
        )
    return DotConfig(source, values, version, arch, tuple(warnings))


def read_dotconfig(path: Path) -> DotConfig:
    """Read and parse a config file, plain or gzip-compressed."""
    raw = read_input(
        path,
        missing_fix="check the path.",
        directory_fix="pass the .config file (or use --srctree DIR).",
        limit=MAX_BYTES,
    )
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise UserError(f"{path}: error: corrupt gzip data ({exc}). Fix: pass an intact config.") from None
    if len(raw) > MAX_BYTES:
        raise UserError(f"{path}: error: larger than {MAX_BYTES >> 20} MiB; not a kernel config.")
    if b"\0" in raw:
        raise UserError(f"{path}: error: binary data, not a kernel config. Fix: pass a .config text file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # kconfig strings are bytes; keep going
    return parse_dotconfig(text, str(path))


def default_config_paths(release: str | None = None) -> list[Path]:
    """Where the running kernel's config may be, in the order we try them."""
    release = release or os.uname().release
    return [
        Path("/proc/config.gz"),
        Path(f"/boot/config-{release}"),
        Path(f"/lib/modules/{release}/build/.config"),
        Path(f"/usr/lib/modules/{release}/config"),
    ]


def find_running_config(release: str | None = None) -> Path:
    tried = default_config_paths(release)
    for path in tried:
        if path.is_file():
            return path
    raise UserError(
        "error: no config found for the running kernel (tried "
        + ", ".join(map(str, tried))
        + "). Fix: pass a config file, e.g. dbgscaffold check-config /boot/config-<release>."
    )


def makefile_version(srctree: Path) -> tuple[int, ...]:
    """(VERSION, PATCHLEVEL, SUBLEVEL) from a kernel tree's top Makefile."""
    try:
        return parse_makefile_version((srctree / "Makefile").read_text(errors="replace")[:4096])
    except OSError:
        return ()
