"""What watches a run for memory and locking bugs: the kernel's built-in detectors, and what `--sanitize` turns on.

A debug kernel (`dbgscaffold kernel build`) has KASAN, lockdep, kmemleak, UBSAN
compiled in; a stock kernel has none of them, but Debian's have SLUB_DEBUG and
PAGE_POISONING (and 6.12 KFENCE with its sample interval 0, i.e. off): boot options
switch those on without a new kernel. The report's header names what was active,
so a pass says what it was checked against.

Pure: detectors(), slowdown(), has_kmemleak(). Edge: config_of() (reads the kernel's .config).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..paths import file_identity
from ..vm.images import KernelPair

# (CONFIG symbol, what the report calls it): detectors a kernel has compiled in and on.
BUILT_IN = (
    ("KASAN", "KASAN"),
    ("PROVE_LOCKING", "lockdep"),
    ("DEBUG_ATOMIC_SLEEP", "sleep-in-atomic checks"),
    ("DEBUG_KMEMLEAK", "kmemleak"),
    ("UBSAN", "UBSAN"),
    ("DEBUG_LIST", "list debugging"),
)
# (CONFIG symbol, kernel argument, what the report calls it): what --sanitize turns on.
SANITIZE = (
    ("SLUB_DEBUG", "slub_debug=FZPU", "SLUB debug (sanity checks, red zones, poisoning, owner tracking)"),
    ("PAGE_POISONING", "page_poison=1", "page poisoning"),
    ("", "init_on_free=1", "init_on_free"),  # every kernel since 5.3
    ("KFENCE", "kfence.sample_interval=1", "KFENCE (a sample every millisecond)"),
)


@dataclass(frozen=True)
class Detectors:
    names: tuple[str, ...]  # what was watching, for the report's header
    append: tuple[str, ...] = ()  # kernel arguments that turn them on


def _on(config: dict[str, str], symbol: str) -> bool:
    return config.get(symbol) == "y"


def detectors(config: dict[str, str], sanitize: bool) -> Detectors:
    """The detectors of a kernel whose .config values are `config` ({symbol: value},
    without the CONFIG_ prefix), and the kernel arguments --sanitize adds."""
    names = [name for symbol, name in BUILT_IN if _on(config, symbol)]
    append = []
    if _on(config, "KFENCE") and config.get("KFENCE_SAMPLE_INTERVAL", "0") != "0":
        names.append("KFENCE")
    if sanitize:
        for symbol, argument, name in SANITIZE:
            if not symbol or _on(config, symbol):
                append.append(argument)
                if name not in names and not (symbol == "KFENCE" and "KFENCE" in names):
                    names.append(name)
    return Detectors(tuple(names), tuple(append))


# Checks run about 4x slower under these (measured: the classic module's checks on the debug
# kernel, TCG): time limits stretch by SLOWDOWN so a pass or a timeout means the same thing.
SLOW = frozenset({"KASAN", "kmemleak", "lockdep"})
SLOWDOWN = 3.0


def slowdown(names: tuple[str, ...]) -> float:
    """How much longer checks may take with detectors `names` watching."""
    return SLOWDOWN if SLOW & set(names) else 1.0


def has_kmemleak(config: dict[str, str]) -> bool:
    """Can a run ask kmemleak what a module lost (checks.LEAK_CHECK)?"""
    return _on(config, "DEBUG_KMEMLEAK")


def config_of(pair: KernelPair) -> dict[str, str]:
    """The .config values of the kernel `pair` was built with ({} when it cannot be read)."""
    path = Path(pair.build_dir) / ".config"
    return dict(_config_at(str(path), file_identity(path)))


@functools.lru_cache(maxsize=8)
def _config_at(path: str, identity: str) -> tuple[tuple[str, str], ...]:
    """Parsed once a process per file and version of it (~30 ms): a run reads it for the
    VM's detectors and again for each project's checks."""
    from ..errors import UserError
    from ..kconfig.dotconfig import read_dotconfig

    try:
        config = read_dotconfig(Path(path))
    except UserError:
        return ()
    return tuple((symbol, value.value) for symbol, value in config.values.items())
