#!/usr/bin/env python3
"""`dbgscaffold lab grade` throughput: N submissions, --jobs VMs.

    .venv/bin/python scripts/bench_grade.py [-n 100] [--lab debugfs-basics] [--kernel 6.1] [--jobs 2] [--identical]

The submissions are copies of the lab's solution with every 10th a skeleton
and every 25th a crasher (a NULL store in the first TODO region's function):
each copy gets a unique comment line so every one is really compiled (with
--identical the copies are byte-identical and the grader builds them once).
Visible and hidden checks, as `lab grade` runs them. Prints the total, the
time per submission and the verdict against the issue's target: 100
submissions in <= 60 s on this 2-core machine (issue 14). Not a timed test.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

from dbgscaffold.lab.grading import grade_folder
from dbgscaffold.lab.manifest import find_lab
from dbgscaffold.lab.project import write_project

TARGET_SECONDS, TARGET_COUNT = 60.0, 100


def crasher(project: Path, module: str) -> None:
    """A NULL store at the top of the first function body after a TODO marker."""
    for c in sorted(project.glob("*.c")):
        lines = c.read_text().splitlines(keepends=True)
        for i, line in enumerate(lines):
            if "/* TODO" in line and lines[i - 1].strip() != "*/" and line.startswith("\t/*") and "init" not in "".join(lines[max(0, i - 12):i]):
                lines.insert(i + 1, "\t*(volatile char *)NULL = 1;\n")
                c.write_text("".join(lines))
                return
    raise SystemExit(f"no TODO region to break in {project} ({module})")


def make_submissions(lab, folder: Path, n: int, identical: bool) -> collections.Counter:
    kinds: collections.Counter = collections.Counter()
    for i in range(n):
        student = folder / f"student{i:03d}"
        kind = "crasher" if i % 25 == 24 else "skeleton" if i % 10 == 9 else "solution"
        write_project(lab, student, solution=kind != "skeleton")
        if kind == "crasher":
            crasher(student, lab.module)
        if not identical:
            for c in student.glob("*.c"):
                c.write_text(c.read_text() + f"/* submission {i} */\n")
        kinds[kind] += 1
    return kinds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=TARGET_COUNT, help="submissions")
    ap.add_argument("--lab", default="debugfs-basics")
    ap.add_argument("--kernel", default=None, help="a release or series (default: the default kernel)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--identical", action="store_true", help="byte-identical copies (each distinct source is built once)")
    args = ap.parse_args()
    lab = find_lab(args.lab)
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        kinds = make_submissions(lab, Path(tmp), args.n, args.identical)
        print(f"{args.n} submissions of {lab.id}: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())), flush=True)
        t0 = time.monotonic()
        doc, seconds, count = grade_folder(lab, Path(tmp), args.kernel, args.jobs, 60.0, 10.0,
                                           progress=lambda text: print(text, flush=True))
        wall = time.monotonic() - t0
    exits = collections.Counter(s["exit"] for s in doc["students"])
    full = sum(1 for s in doc["students"] if s["total"] == s["max"])
    print(f"full marks: {full}; exit codes: {dict(sorted(exits.items()))} (0 pass, 1 checks failed, 3 build, 5 timeout, 6 crash)")
    build = sum(s["seconds"]["build"] for s in doc["students"])
    vm = sum(s["seconds"]["vm"] for s in doc["students"])
    print(f"summed over submissions: kbuild {build:.0f} s, VM runs {vm:.0f} s (both overlap across --jobs threads and VMs)")
    per = wall / max(1, count)
    projected = per * TARGET_COUNT
    print(f"total {wall:.1f} s for {count} submissions: {per:.2f} s each with --jobs {args.jobs}; "
          f"{TARGET_COUNT} would take {projected:.0f} s (target <= {TARGET_SECONDS:.0f} s): "
          f"{'MET' if projected <= TARGET_SECONDS else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
