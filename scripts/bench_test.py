#!/usr/bin/env python3
"""The whole `dbgscaffold test` cycle, side by side in one run, per kernel.

    .venv/bin/python scripts/bench_test.py [--runs 5] [--kernel 6.1 ...] [--batch 10]

Every cycle builds the classic example, runs its 21 checks in the VM and judges them:

naive:  kbuild in a scratch copy, then a per-module gzip initramfs and the
        bzImage on QEMU's default PC machine (`console=ttyS0 panic=-1`).
fresh:  `dbgscaffold test --fresh-boot`: the agent guest boots (PVH vmlinux,
        microvm, trimmed arguments) while kbuild compiles.
warm:   `dbgscaffold test`: the saved guest is restored while kbuild compiles
        (the sources unchanged since the last run, as when re-running a test).
edited: warm, after an edit of the module's .c (a comment: a one-file rebuild).

Then batch mode: one VM, the same module 1 and --batch N times; the marginal
cost per extra module, and two VMs side by side; once with the 21 checks, once
with the issue's own batch workload (insmod, read one file, rmmod), which
isolates what the batch machinery costs per module from what the checks cost. Medians of interleaved runs
(this host is noisy: +-25-40 % run to run). Targets from the issue: fresh
<= 3.5 s, warm <= 2.0 s, >= 3x faster than naive, batch <= 0.2 s per extra
module. Not a timed test.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dbgscaffold.render import new_project
from dbgscaffold.runner import checks
from dbgscaffold.runner.build import build_modules
from dbgscaffold.runner.execute import Prepared, RunOptions, RunRequest, run
from dbgscaffold.runner.judge import judge
from dbgscaffold.runner.project import load_project, request, run_tests
from dbgscaffold.spec import parse_spec
from dbgscaffold.vm import images, qemu
from dbgscaffold.vm.agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT, pack_payload
from dbgscaffold.vm.initramfs import FileSpec, build_initramfs, init_script
from dbgscaffold.vm.snapshot import SnapshotStore

TARGETS = {"fresh": 3.5, "warm": 2.0}
TARGET_RATIO = 3.0
TARGET_MARGINAL = 0.2
SPECS = Path(__file__).resolve().parent.parent / "generator" / "specs"


def naive_cycle(project: Path, spec, pair, tmp: Path, accel: str) -> float:
    """What one would write first: scratch build, gzip initramfs, bzImage on `pc`."""
    start = time.perf_counter()
    built = build_modules(project, pair.build_dir, pair.release, tmp).modules[0]
    ko = f"{PAYLOAD_ROOT}/{built.ko.name}"
    run_plan = checks.RunPlan((checks.GuestModule(built.name, ko),), spec)
    plan = checks.plan(run_plan, pair.version)
    files = [
        FileSpec.from_path(ko, built.ko, 0o644),
        FileSpec(PAYLOAD_SCRIPT, checks.script(run_plan, pair.version).encode(), 0o755),
        *checks.guest_files(),
    ]
    cpio = build_initramfs(init_script(f"sh {PAYLOAD_SCRIPT}"), files, cache=tmp / "naive")
    gz = cpio.with_suffix(".cpio.gz")
    gz.write_bytes(gzip.compress(cpio.read_bytes(), compresslevel=6))
    r = qemu.run(qemu.naive_machine(pair.image, gz, accel=accel), timeout=120)
    seconds = time.perf_counter() - start
    judged = judge(spec.module.name, [c.name for c in plan], r)
    if judged.exit_code != 0:
        raise SystemExit(f"naive cycle on {pair.release}: {judged.verdict}\n{r.console[-1500:]}")
    return seconds


LIGHT_CHECKS = (
    ("insmod", f"insmod {PAYLOAD_ROOT}/mydebug.ko"),
    ("read a", "same /sys/kernel/debug/mydebug/a '5\\n'"),
    ("rmmod", "rmmod mydebug"),
)


class LightChecks:
    """The issue's batch workload for one module: insmod, one read, rmmod (the runner's Checks)."""

    def prepare(self, project: Path, pair, workdir: Path, check_timeout) -> Prepared:
        t0 = time.perf_counter()
        built = build_modules(project, pair.build_dir, pair.release, workdir).modules[0]
        script = checks.render_script("insmod, read, rmmod", {}, [(n, body, "") for n, body in LIGHT_CHECKS], check_timeout=10)
        payload = pack_payload([FileSpec.from_path(f"{PAYLOAD_ROOT}/mydebug.ko", built.ko, 0o644), FileSpec(PAYLOAD_SCRIPT, script.encode(), 0o755)])
        return Prepared("mydebug", tuple(n for n, _ in LIGHT_CHECKS), payload, time.perf_counter() - t0, 0.0)


def timed_run(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def med(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f}" if values else "     -"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kernel", action="append", default=[])
    ap.add_argument("--batch", type=int, default=10, help="modules in the batch measurement (0: skip it)")
    args = ap.parse_args()
    pairs = [images.pair_for(k) for k in args.kernel] or list(images.scan_pairs().pairs)
    accel = qemu.probe_accel("auto")
    print(f"accel {accel.accel}: {accel.reason}; load average {os.getloadavg()[0]:.1f} at start")
    modes = ("naive", "fresh", "warm", "edited")
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-bench-") as tmp:
        tmp = Path(tmp)
        spec = parse_spec((SPECS / "classic.toml").read_text(), name_override="mydebug")
        project = new_project(spec, tmp / "mydebug").project
        source = project / "mydebug_debugfs.c"
        store = SnapshotStore(tmp / "snapshots")
        rows = {p.release: {m: [] for m in modes} | {"build": [], "restore": [], "checks": []} for p in pairs}
        for pair in pairs:  # the snapshot and the build trees exist before the first timed run
            if run_tests([project], pair, RunOptions(snapshot=store))[0].exit_code != 0:
                raise SystemExit(f"{pair.release}: the classic module does not pass")
        for i in range(args.runs):
            for pair in pairs:
                r = rows[pair.release]
                r["naive"].append(naive_cycle(project, spec, pair, tmp / f"n{i}", accel.accel))
                for mode in ("fresh", "warm", "edited"):
                    if mode == "edited":  # new bytes: touching alone no longer makes kbuild run
                        source.write_text(source.read_text() + f"/* edit {i} */\n")
                    options = RunOptions(snapshot=False if mode == "fresh" else store)
                    seconds, outcome = timed_run(run_tests, [project], pair, options)
                    outcome = outcome[0]
                    if outcome.exit_code != 0 or outcome.boot != ("fresh" if mode == "fresh" else "snapshot"):
                        raise SystemExit(f"{pair.release} {mode}: {outcome.verdict} ({outcome.boot}: {outcome.boot_note})")
                    r[mode].append(seconds)
                    if mode == "warm":
                        r["build"].append(outcome.build_seconds)
                        r["restore"].append(outcome.boot_seconds or 0.0)
                        r["checks"].append(outcome.wall_seconds)
                print(f"  run {i + 1} {pair.release}: " + ", ".join(f"{m} {r[m][-1]:.2f} s" for m in modes), flush=True)

        print(f"\nwhole cycle, medians of {args.runs} interleaved runs (seconds)")
        print(f"{'kernel':26} {'naive':>6} {'fresh':>6} {'warm':>6} {'edit':>6} | warm: {'build':>5} {'restore':>7} {'checks':>6} | naive/fresh naive/warm")
        ok = True
        for release, r in rows.items():
            m = {k: statistics.median(v) for k, v in r.items() if v}
            cycle = f"{med(r['naive'])} {med(r['fresh'])} {med(r['warm'])} {med(r['edited'])}"
            print(f"{release:26} {cycle} |       {m['build']:5.2f} {m['restore']:7.2f} {m['checks']:6.2f} | "
                  f"{m['naive'] / m['fresh']:10.1f}x {m['naive'] / m['warm']:9.1f}x")
            for mode, target in TARGETS.items():
                met = m[mode] <= target
                ok &= met
                print(f"    {mode}: {m[mode]:.2f} s against <= {target} s: {'met' if met else 'NOT met'}")
            met = m["naive"] / m["fresh"] >= TARGET_RATIO
            ok &= met
            print(f"    naive/fresh {m['naive'] / m['fresh']:.1f}x against >= {TARGET_RATIO:g}x: {'met' if met else 'NOT met'}")

        if args.batch > 1:
            pair = pairs[-1]
            copies = []
            for n in range(args.batch):
                copy = tmp / f"batch{n}" / "mydebug"
                shutil.copytree(project, copy, ignore=shutil.ignore_patterns("*.o", "*.ko", ".*.cmd"))
                copies.append(copy)
            run_tests(copies, pair, RunOptions(jobs=1, snapshot=store))  # warm every copy's build tree
            full = [request(load_project(c)) for c in copies]
            light = [RunRequest("mydebug", c, LightChecks()) for c in copies]
            for label, items in (("the 21 checks", full), ("insmod + one read + rmmod", light)):
                one, many, two_vms, in_guest = [], [], [], []
                for _ in range(max(1, args.runs // 2)):
                    one.append(timed_run(run, items[:1], pair, RunOptions(jobs=1, snapshot=store))[0])
                    seconds, pairs_run = timed_run(run, items, pair, RunOptions(jobs=1, snapshot=store))
                    runs = [r for r, _ in pairs_run]
                    if any(x.exit_code for x in runs):
                        raise SystemExit(f"batch ({label}): " + "; ".join(x.verdict for x in runs))
                    many.append(seconds)
                    in_guest.append(statistics.median([x.wall_seconds for x in runs]))
                    two_vms.append(timed_run(run, items, pair, RunOptions(jobs=2, snapshot=store))[0])
                marginal = (statistics.median(many) - statistics.median(one)) / (args.batch - 1)
                print(f"\nbatch on {pair.release}, {label} per module: 1 module {statistics.median(one):.2f} s, {args.batch} modules "
                      f"in one VM {statistics.median(many):.2f} s, in two VMs {statistics.median(two_vms):.2f} s")
                print(f"    marginal cost per extra module (one VM): {marginal:.2f} s, of which its run in the guest "
                      f"{statistics.median(in_guest):.2f} s; against <= {TARGET_MARGINAL} s: {'met' if marginal <= TARGET_MARGINAL else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
