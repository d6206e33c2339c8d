"""A verdict you can trust: the debug kernel (`dbgscaffold kernel build`, the debug profile)
and `test --sanitize` on the stock kernels catch a use-after-free that passes every check
on a plain kernel, and the report points at the line that did it.

The modules are tests/data/handwritten/uaf (its init writes to memory it has just
freed) and tests/data/handwritten/leak (its init allocates a buffer it never frees).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli, run_json
from test_vm_module import series  # noqa: F401 - a fixture: each Debian kernel

pytestmark = pytest.mark.slow

UAF = Path(__file__).resolve().parent / "data" / "handwritten" / "uaf"
LEAK = UAF.parent / "leak"


def test_the_debug_kernel_catches_a_use_after_free_and_a_leak_and_names_their_lines(each_debug_kernel, tmp_path):
    shutil.copytree(UAF, tmp_path / "uaf")
    shutil.copytree(LEAK, tmp_path / "leak")
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "mydebug")).exit_code == 0
    code, doc, out = run_json(tmp_path, str(tmp_path / "mydebug"), str(tmp_path / "uaf"), str(tmp_path / "leak"), "--kernel", each_debug_kernel)
    classic, uaf, leak = doc["runs"]
    assert classic["exit_code"] == 0 and len(classic["checks"]) == 22, classic["verdict"]
    assert classic["checks"][-1]["name"] == "no memory leaked" and classic["checks"][-1]["status"] == "pass"
    assert {"KASAN", "lockdep", "kmemleak"} <= set(classic["detectors"]) and "KASAN" in out
    # its PVH vmlinux triple-faults (KASAN's early shadow): the bzImage boots, and the report says so
    assert classic["image"] == "bzimage" and "its PVH entry does not boot" in classic["boot_note"]
    kind = "slab-use-after-free" if each_debug_kernel == "debug-6.12" else "use-after-free"  # 6.12's KASAN names the memory
    assert code == 6 and uaf["exit_code"] == 6 and uaf["verdict"].startswith(f"crash: KASAN: {kind} in uaf_init [uaf] in check 1"), uaf["verdict"]
    frames = [f for f in uaf["crashes"][0]["frames"] if f["file"]]
    assert ("uaf.c", 16, "p[8] = 'x';\t/* use after free */") in [(f["file"], f["line"], f["source"]) for f in frames], frames
    assert "uaf.c:16 (uaf_init): p[8] = 'x';" in out
    # the leak: every functional check passes, kmemleak's check after the last rmmod does not
    assert leak["exit_code"] == 1 and leak["verdict"].endswith("checks failed: memory leak in leak_init"), leak["verdict"]
    assert [c["name"] for c in leak["checks"] if c["status"] != "pass"] == ["no memory leaked"]
    assert leak["findings"] == ["memory leak in leak_init"] and {x["size"] for x in leak["leaks"]} == {96}
    assert len(leak["leaks"]) == 4  # one per load: the first and the three load/unload cycles
    site = leak["leaks"][0]["frames"][0]
    assert (site["file"], site["line"], site["function"]) == ("leak.c", 12, "leak_init") and "kzalloc(96" in site["source"]
    assert "allocated at leak.c:12 (leak_init): buf = kzalloc(96, GFP_KERNEL);" in out


def test_the_same_modules_pass_a_plain_stock_kernel(series, tmp_path):
    shutil.copytree(UAF, tmp_path / "uaf")
    shutil.copytree(LEAK, tmp_path / "leak")
    code, doc, out = run_json(tmp_path, str(tmp_path / "uaf"), str(tmp_path / "leak"), "--kernel", series)
    assert code == 0, out  # which is why a pass needs the detectors said beside it
    assert "no memory or lock debugging" in out or doc["runs"][0]["detectors"] == ["list debugging"]
    assert not any(c["name"] == "no memory leaked" for r in doc["runs"] for c in r["checks"])  # no kmemleak: not asked


def test_sanitize_catches_it_on_the_stock_kernel(series, tmp_path):
    shutil.copytree(UAF, tmp_path / "uaf")
    code, doc, out = run_json(tmp_path, str(tmp_path / "uaf"), "--kernel", series, "--sanitize")
    run = doc["runs"][0]
    assert "SLUB debug (sanity checks, red zones, poisoning, owner tracking)" in run["detectors"] and "init_on_free" in run["detectors"]
    assert ("KFENCE (a sample every millisecond)" in run["detectors"]) == (series == "6.12")  # 6.1 has no KFENCE
    assert code == 6, out
    titles = [c["title"] for c in run["crashes"]]  # 6.1 says "Poison overwritten", 6.12 "Object corrupt"
    assert titles[0].startswith(("SLUB: Poison overwritten (kmalloc-64)", "SLUB: Object corrupt (kmalloc-64)")), titles
    assert "B" in run["taint"]["letters"]


@pytest.mark.parametrize("lab", ["debugfs-basics", "debugfs-fops", "relay"])
def test_the_debug_kernel_catches_every_planted_bug_of_a_lab_on_its_line(debug_kernel, lab):
    """`lab selfcheck --mutants` on the debug kernel: the solution still passes, and each
    mutant (mutants.toml) is reported by its detector with a decoded frame on the planted
    line (on Debian's kernels the same mutants pass every check: test_lab_vm)."""
    from dbgscaffold.lab.manifest import find_lab
    from dbgscaffold.lab.mutants import load_mutants

    r = run_cli("lab", "selfcheck", lab, "--kernel", debug_kernel, "--mutants")
    assert r.exit_code == 0 and "selfcheck: no defects" in r.stdout, r.output
    for m in load_mutants(find_lab(lab)):
        assert f"mutant {m.name}: caught: {m.finding}" in r.stdout, r.stdout


def test_lab_grade_on_the_debug_kernel_names_each_students_finding(debug_kernel, tmp_path):
    from dbgscaffold.lab.manifest import find_lab
    from dbgscaffold.lab.mutants import load_mutants, write_mutant

    lab = find_lab("debugfs-basics")
    subs = tmp_path / "subs"
    planted = {m.name: m for m in load_mutants(lab)}
    # graded in name order, one VM after another: bob's run follows alice's leak in the same guest
    write_mutant(lab, planted["leak"], subs / "alice")
    assert run_cli("lab", "solution", lab.id, str(subs / "bob")).exit_code == 0
    write_mutant(lab, planted["use-after-free"], subs / "carol")
    r = run_cli("lab", "grade", "--lab", lab.id, str(subs), "--kernel", debug_kernel, "--out", str(tmp_path / "g.csv"), "-j", "1")
    assert r.exit_code == 0, r.output
    rows = {row["student"]: row for row in csv.DictReader((tmp_path / "g.csv").open())}
    assert rows["alice"]["findings"] == "memory leak in c_write" and rows["alice"]["verdict"].endswith("memory leak in c_write")
    assert rows["bob"]["findings"] == "" and rows["bob"]["total"] == "12", rows["bob"]  # alice's leak is not bob's
    assert rows["carol"]["findings"] == "KASAN: use-after-free in c_write [mydebug]"
    doc = json.loads((tmp_path / "g.json").read_text())
    carol = next(s for s in doc["students"] if s["student"] == "carol")
    assert carol["crash_location"].startswith("mydebug.c:") and carol["findings"][0].startswith("KASAN")
