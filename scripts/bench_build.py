#!/usr/bin/env python3
"""Module build for `dbgscaffold test`: scratch copy vs the cached incremental tree.

    .venv/bin/python scripts/bench_build.py [--runs 5] [--kernel 6.1]

Generates the classic example once (`dbgscaffold new mydebug`), then per
round, interleaved (this host is noisy): a scratch_build (fresh copy, clean
make), an incremental_build with nothing changed (no-op make), one after
touching the .c without changing it, and one after editing the .c (one file
recompiled).  Prints the medians against the default kernel's headers (or
--kernel's) and their ratios to the scratch build.  The cache is a temporary
directory, so ~/.cache is left alone.  Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbgscaffold.kbuild import incremental_build, scratch_build
from dbgscaffold.vm import images


def timed(cm) -> tuple[float, str]:
    """Seconds to enter a build context (sync + make) and the make output."""
    start = time.perf_counter()
    with cm as (build_dir, result):
        seconds = time.perf_counter() - start
        if not result.ok or not list(build_dir.glob("*.ko")):
            sys.exit(f"build failed:\n{result.output}")
        return seconds, result.output


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kernel", help="release or series (default: the kernel `dbgscaffold test` picks)")
    args = ap.parse_args()
    pair = images.pair_for(args.kernel) if args.kernel else images.default_pair()[0]
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-bench-") as tmp:
        os.environ["DBGSCAFFOLD_CACHE"] = str(Path(tmp) / "cache")
        project = Path(tmp) / "mydebug"
        subprocess.run([sys.executable, "-m", "dbgscaffold", "new", "mydebug", "-o", str(project)], check=True, capture_output=True)
        c_file = sorted(project.glob("*.c"))[0]
        original = c_file.read_text()
        kdir = pair.build_dir
        cold, _ = timed(incremental_build(project, kdir))
        rows: dict[str, list[float]] = {"scratch (clean)": [], "incremental no-op": [], "incremental touch .c": [], "incremental edit .c": []}
        for i in range(args.runs):
            rows["scratch (clean)"].append(timed(scratch_build(project, kdir))[0])
            seconds, out = timed(incremental_build(project, kdir))
            assert "CC [M]" not in out, out
            rows["incremental no-op"].append(seconds)
            os.utime(c_file)
            rows["incremental touch .c"].append(timed(incremental_build(project, kdir))[0])
            c_file.write_text(original + f"\n/* bench edit {i} */\n")
            seconds, out = timed(incremental_build(project, kdir))
            assert out.count("CC [M]") == 1, out
            rows["incremental edit .c"].append(seconds)
    print(f"{pair.release}: classic module, medians of {args.runs} (seconds; first incremental build, cold: {cold:.2f})")
    base = statistics.median(rows["scratch (clean)"])
    for name, values in rows.items():
        med = statistics.median(values)
        print(f"  {name:22} {med:6.2f}   x{med / base:4.2f} of scratch   (min {min(values):.2f}, max {max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
