"""Every profile takes effect as a fragment, judged by the kernel's own tools (issue 15).

For each kernel_configs/*.config and each of Debian's linux-source 6.1 and 6.12: Debian's
config for that series with the profile's options switched off (each option, and what
selects it; a choice-driven one by picking another member of its choice), then the
kernel's scripts/kconfig/merge_config.sh -m with the profile, then the kernel's own
`make olddefconfig`; check-config --strict must pass the result. An option without a
prompt keeps what olddefconfig computes whatever the fragment says (CONFIG_DEBUG_INFO=y
since 5.18 did nothing): the profile's `@sets` lines set what sets it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require, require_tools
from dbgscaffold.kconfig.profiles import available_profiles, load_profile

pytestmark = pytest.mark.slow


def _selectors(sym):
    """The symbols whose `select` sets `sym` (not the conditions of those selects)."""
    import kconfiglib

    for term in kconfiglib.split_expr(sym.rev_dep, kconfiglib.OR):
        selector = term if isinstance(term, kconfiglib.Symbol) else term[1]
        if isinstance(selector, kconfiglib.Symbol) and selector.nodes:
            yield selector


def switch_off(sym, seen: set, depth: int = 0) -> None:
    """`sym` off as a user's config without it has it: its own value n, a choice member
    given up for another member of the choice, and what selects it off too."""
    if sym in seen or depth > 4 or sym.tri_value == 0:
        return
    seen.add(sym)
    if sym.choice is not None:
        other = next((m for m in sym.choice.syms if m is not sym and m.visibility and all(s is not sym for s, _ in m.selects)), None)
        if other is not None:
            other.set_value(2)
    elif sym.visibility:
        sym.set_value(0)
    for selector in _selectors(sym):
        switch_off(selector, seen, depth + 1)


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_every_profile_takes_effect_through_merge_config_and_olddefconfig(series, tmp_path):
    require_tools("make", "gcc", "flex", "bison")
    require(Path(f"/usr/src/linux-source-{series}.tar.xz").is_file(), f"Debian's linux-source-{series}")
    debian = sorted(Path("/boot").glob(f"config-{series}.*"))
    require(bool(debian), f"Debian's /boot/config-{series}.* (linux-image-amd64)")
    from dbgscaffold.kconfig.tree import load_tree
    from dbgscaffold.kernel_build import source_for

    src = source_for(series)
    out = tmp_path / "out"  # one O= directory: scripts/kconfig/conf is built once
    out.mkdir()
    results = {}
    exercised = 0
    for name in available_profiles():
        profile = load_profile(name)
        kconf = load_tree(src, "x86", debian[-1])
        seen: set = set()
        for option in profile.options:
            sym = kconf.syms.get(option.symbol)
            if sym is not None and sym.nodes and option.accepted != {"n"}:
                switch_off(sym, seen)
                exercised += sym.tri_value == 0
        base = tmp_path / f"{name}.base"
        kconf.write_config(str(base))
        merged = subprocess.run(["bash", str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out), str(base), profile.path],
                                capture_output=True, text=True, cwd=src, check=False)
        assert merged.returncode == 0, merged.stdout[-2000:] + merged.stderr[-2000:]
        made = subprocess.run(["make", "-s", "-C", str(src), f"O={out}", "ARCH=x86", "olddefconfig"], capture_output=True, text=True, check=False)
        assert made.returncode == 0, made.stderr[-2000:]
        shutil.copy(out / ".config", tmp_path / f"{name}.config")
        checked = subprocess.run([sys.executable, "-m", "dbgscaffold", "check-config", str(out / ".config"), "--srctree", str(src), "-p", name,
                                  "--strict", "--json"], capture_output=True, text=True, check=False)
        doc = json.loads(checked.stdout)
        results[name] = [f"{o['symbol']} ({o['level']}): {o['actual']}" for o in doc["options"] if o["status"] == "fail"]
    assert not any(results.values()), {n: r for n, r in results.items() if r}
    assert exercised > 40, "the bases left most options on: the test would not see a fragment that does nothing"
