#!/usr/bin/env python3
"""`dbgscaffold test` on your own module and your own kernel: the cycle times issue 10 sets targets for.

    .venv/bin/python scripts/bench_own.py [--runs 5] [--tree DIR]

1. A hand-written module with discovered checks (tests/data/handwritten/knobs), on
   each installed Debian kernel: warm (snapshot restored, sources unchanged) and
   after a one-line edit of its .c. Targets: warm <= 1.0 s, edited <= 2.0 s.
2. A kernel built here (--tree: a kernel build tree; default: kernel_build's
   tinyconfig + vm.config build of linux-source-6.1, built if missing): the first
   `test` (boot + snapshot save) against the kernel's own boot, and later runs.
   Targets: first <= the boot + 4 s; later as fast as the packaged kernels.
Medians of interleaved runs; the host is noisy (+-25-40 %). Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dbgscaffold.runner.execute import RunOptions
from dbgscaffold.runner.kernels import resolve
from dbgscaffold.runner.project import run_tests
from dbgscaffold.vm import images
from dbgscaffold.vm.snapshot import SnapshotStore

KNOBS = Path(__file__).resolve().parent.parent / "tests" / "data" / "handwritten" / "knobs"
TARGETS = {"warm": 1.0, "edited": 2.0}
FIRST_OVER_BOOT = 4.0


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def cycle(project: Path, pair, store) -> tuple[float, object]:
    seconds, runs = timed(run_tests, [project], pair, RunOptions(snapshot=store))
    run = runs[0]
    if run.exit_code != 0:
        raise SystemExit(f"{project.name} on {pair.release}: {run.verdict}")
    return seconds, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tree", type=Path, help="a kernel build tree (default: build the tiny one)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at start; {args.runs} runs each")
    ok = True
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-bench-own-") as tmp:
        tmp = Path(tmp)
        project = tmp / "knobs"
        shutil.copytree(KNOBS, project)
        source = project / "knobs.c"
        store = SnapshotStore(tmp / "snapshots")
        pairs = list(images.scan_pairs().pairs)
        if args.tree is None:
            from dbgscaffold.kernel_build import build_kernel, source_for

            built = build_kernel(source_for("6.1"), log=print)
            args.tree = built.tree
        tree = resolve(str(args.tree))[0][0]
        rows: dict[str, dict[str, list[float]]] = {}
        for pair in [*pairs, tree]:
            cycle(project, pair, store)  # build trees and snapshots exist before timing
            rows[pair.release] = {"warm": [], "edited": [], "restore": [], "checks": [], "build": []}
        for i in range(args.runs):
            # One edit, then each kernel's build of it (each kernel has its own build tree),
            # then each kernel again with nothing changed.
            source.write_text(source.read_text() + f"/* edit {i} */\n")
            for pair in [*pairs, tree]:
                seconds, run = cycle(project, pair, store)
                rows[pair.release]["edited"].append(seconds)
                rows[pair.release]["build"].append(run.build_seconds)
            for pair in [*pairs, tree]:
                r = rows[pair.release]
                seconds, run = cycle(project, pair, store)
                r["warm"].append(seconds)
                r["restore"].append(run.boot_seconds or 0.0)
                r["checks"].append(run.wall_seconds)
        print(f"\nknobs (hand-written, {len(rows[pairs[0].release]['warm'])} runs, discovered checks), medians in seconds")
        print(f"{'kernel':26} {'warm':>6} {'edited':>6} | warm: {'restore':>7} {'checks':>6} | edited: {'build':>5}")
        for release, r in rows.items():
            m = {k: statistics.median(v) for k, v in r.items()}
            print(f"{release:26} {m['warm']:6.2f} {m['edited']:6.2f} |       {m['restore']:7.2f} {m['checks']:6.2f} |         {m['build']:5.2f}")
            for mode, target in TARGETS.items():
                met = m[mode] <= target
                ok &= met
                print(f"    {mode}: {m[mode]:.2f} s against <= {target} s: {'met' if met else 'NOT met'}")

        firsts, boots = [], []
        for i in range(args.runs):
            fresh_store = SnapshotStore(tmp / f"first-{i}")  # no snapshot yet: boot and save one
            seconds, run = cycle(project, tree, fresh_store)
            if run.boot != "fresh":
                raise SystemExit(f"expected a fresh boot: {run.boot_note}")
            firsts.append(seconds)
            boots.append(run.boot_seconds or 0.0)
        first, boot = statistics.median(firsts), statistics.median(boots)
        met = first <= boot + FIRST_OVER_BOOT
        ok &= met
        print(f"\nyour kernel ({tree.release}, {tree.build_dir}): first test {first:.2f} s, of which the kernel's boot {boot:.2f} s: "
              f"{first - boot:.2f} s beyond it against <= {FIRST_OVER_BOOT:g} s: {'met' if met else 'NOT met'}")
        warm_tree = statistics.median(rows[tree.release]["warm"])
        warm_debian = min(statistics.median(rows[p.release]["warm"]) for p in pairs)
        print(f"    later runs {warm_tree:.2f} s against the packaged kernels' {warm_debian:.2f} s ({warm_tree / warm_debian:.2f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
