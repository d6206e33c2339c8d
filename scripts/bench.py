#!/usr/bin/env python3
"""Wall-time benchmark of the CLI, printed against its targets.

    .venv/bin/python scripts/bench.py [--runs N]

Each figure is the median of N runs of a fresh process (what a user waits
for), interleaved so that machine noise hits both commands alike.  Targets
(issues 2, 3 and 14, on the project's 2-core machine): --help <= 0.15 s,
new <= 0.5 s, check-config --flat on Debian's 6.1 config <= 0.15 s, and the
same config judged on its Kconfig tree (`-p debug`, the parsed tree cached by
an untimed first run) <= 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"--help": 0.15, "new": 0.5, "check-config --flat": 0.15, "check-config": 0.3}
DEBIAN_CONFIG = sorted(Path("/boot").glob("config-6.1.*"))
VERDICTS = (0, 1)  # check-config's exit 1 is a verdict (a required option is off), not a failure


def cli() -> list[str]:
    exe = Path(sys.executable).parent / "dbgscaffold"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dbgscaffold"]


def timed(argv: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    """Seconds of one run, which must exit with one of `ok`."""
    start = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if r.returncode not in ok:
        raise SystemExit(f"bench: `{' '.join(argv)}` exited {r.returncode}:\n{r.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = cli()
    samples: dict[str, list[float]] = {name: [] for name in TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timed([*base, "--help"], work)  # warm the page cache and .pyc files
        tree_argv = [*base, "check-config", str(DEBIAN_CONFIG[-1]), "--no-runtime", "-p", "debug"] if DEBIAN_CONFIG else []
        if tree_argv:
            timed(tree_argv, work, VERDICTS)  # parses the Kconfig tree once and caches it: later runs are warm
        for i in range(args.runs):
            samples["--help"].append(timed([*base, "--help"], work))
            samples["new"].append(timed([*base, "new", "mydebug", "-o", f"m{i}"], work))
            shutil.rmtree(work / f"m{i}")
            if DEBIAN_CONFIG:
                argv = [*base, "check-config", str(DEBIAN_CONFIG[-1]), "--flat", "--no-runtime", "-p", "systemtap", "-p", "ftrace"]
                samples["check-config --flat"].append(timed(argv, work, VERDICTS))
                samples["check-config"].append(timed(tree_argv, work, VERDICTS))
    print(f"{'command':20} {'median':>8} {'min':>8} {'max':>8} {'target':>8} {'ratio':>7}")
    failed = False
    for name, values in samples.items():
        if not values:
            print(f"{name:20} skipped (no /boot/config-6.1.*)")
            continue
        median = statistics.median(values)
        ratio = median / TARGETS[name]
        failed |= ratio > 1
        print(f"{name:20} {median:8.3f} {min(values):8.3f} {max(values):8.3f} {TARGETS[name]:8.2f} {ratio:7.2f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{args.runs} runs each; ratio = median / target ({'over target' if failed else 'within target'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
