#!/usr/bin/env python3
"""Kconfig tree parse times, printed against their targets.

    .venv/bin/python scripts/bench_kconfig.py [--runs N] [--series 6.1 6.12]

Cold: kconfiglib + compat layer parsing the whole tree (no cache).  Warm:
load_tree() from the parsed-tree cache (key check, Kconfig file hashes,
unpickle).  Each figure is the median of N fresh processes, so one run's
garbage does not slow the next.  Targets (issue 3, on the project's 2-core
machine) apply to 6.1: cold <= 2.0 s, warm <= 0.3 s.  The first run
extracts the tree from /usr/src/linux-source-<series>.tar.xz (~10 s, once).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TARGETS = {"cold": 2.0, "warm": 0.3}

CHILD = """
import json, sys
from dbgscaffold.kconfig.tree import find_source_tree, load_tree
tree = find_source_tree(sys.argv[1])
kconf = load_tree(tree, use_cache=sys.argv[2] == "warm")
print(json.dumps({"seconds": kconf.load_info.seconds, "cached": kconf.load_info.cached, "symbols": kconf.load_info.symbols}))
"""


def measure(series: str, mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, series, mode], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench_kconfig: {series} {mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--series", nargs="+", default=["6.1", "6.12"])
    args = parser.parse_args()
    print(f"{'tree':6} {'phase':5} {'median':>8} {'min':>7} {'max':>7} {'target':>7} {'ratio':>6}  symbols")
    worst = 0.0
    for series in args.series:
        measure(series, "warm")  # extract the tree and fill the cache once
        for mode in ("cold", "warm"):
            runs = [measure(series, mode) for _ in range(args.runs)]
            if mode == "warm" and not all(r["cached"] for r in runs):
                sys.exit(f"bench_kconfig: {series}: warm loads missed the cache")
            times = [r["seconds"] for r in runs]
            median = statistics.median(times)
            target = TARGETS[mode] if series == "6.1" else None
            ratio = f"{median / target:6.2f}" if target else "     -"
            if target:
                worst = max(worst, median / target)
            wanted = f"{target:.1f}s" if target else "-"
            print(f"{series:6} {mode:5} {median:7.2f}s {min(times):6.2f}s {max(times):6.2f}s {wanted:>7} {ratio}  {runs[0]['symbols']}")
    print(f"worst ratio to target: {worst:.2f} ({'within' if worst <= 1 else 'OVER'} targets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
