#!/usr/bin/env python3
"""The whole `dbgscaffold test` cycle per kernel: build + pack + boot + checks + poweroff.

    .venv/bin/python scripts/bench_test.py [--runs 5] [--kernel 6.1 ...]

Generates the classic example once, then runs run_module_test() on every kernel
pair found (or the --kernel ones), interleaved (this host is noisy), and prints
the medians of each part against the issue's fresh-boot target (<= 3.5 s).
Not a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dbgscaffold.render import new_project
from dbgscaffold.spec import parse_spec
from dbgscaffold.vm import images
from dbgscaffold.vm.runner import run_module_test

TARGET = 3.5
SPECS = Path(__file__).resolve().parent.parent / "generator" / "specs"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kernel", action="append", default=[])
    args = ap.parse_args()
    pairs = [images.pair_for(k) for k in args.kernel] or list(images.scan_pairs().pairs)
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-bench-") as tmp:
        spec = parse_spec((SPECS / "classic.toml").read_text(), name_override="mydebug")
        project = new_project(spec, Path(tmp) / "mydebug").project
        rows: dict[str, dict[str, list[float]]] = {p.release: {"build": [], "pack": [], "boot": [], "vm": [], "total": []} for p in pairs}
        for i in range(args.runs):
            for pair in pairs:
                start = time.perf_counter()
                run = run_module_test(project, pair, timeout=60, spec=spec)
                total = time.perf_counter() - start
                if run.exit_code != 0:
                    print(f"{pair.release}: run {i + 1}: {run.verdict}", file=sys.stderr)
                    return 1
                r = rows[pair.release]
                r["build"].append(run.build_seconds)
                r["pack"].append(run.pack_seconds)
                r["boot"].append(run.boot_seconds or 0.0)
                r["vm"].append(run.wall_seconds)
                r["total"].append(total)
    print(f"{'kernel':26} {'build':>6} {'pack':>6} {'boot':>6} {'vm':>6} {'total':>6}   (medians of {args.runs}, seconds; accel {run.accel})")
    for release, r in rows.items():
        med = {k: statistics.median(v) for k, v in r.items()}
        verdict = "ok" if med["total"] <= TARGET else f"over the {TARGET} s target"
        print(f"{release:26} {med['build']:6.2f} {med['pack']:6.2f} {med['boot']:6.2f} {med['vm']:6.2f} {med['total']:6.2f}   {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
