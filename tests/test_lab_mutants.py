"""Planted-bug mutants (mutants.toml) without a VM: every shipped lab's mutants apply to its
solution; bad files are reported with a Fix; the verdict rule on scored runs. The VM half
(each compiles and passes on the stock kernels: test_lab_vm.py; caught on its line on the
debug kernel: test_vm_debug_kernel.py)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from dbgscaffold.lab.manifest import LabError, find_lab
from dbgscaffold.lab.mutants import Edit, Mutant, apply, load_mutants, parse_mutants, verdict, write_mutant
from dbgscaffold.runner.decode import Frame
from dbgscaffold.runner.model import Status

LABS = ("debugfs-basics", "debugfs-fops", "relay")


@pytest.mark.parametrize("lab_id", LABS)
def test_each_shipped_mutant_changes_the_solution_in_one_place(lab_id, tmp_path):
    lab = find_lab(lab_id)
    mutants = load_mutants(lab)
    assert len(mutants) >= 2 and {"leak", "sleep-under-spinlock"} <= {m.name for m in mutants}
    for m in mutants:
        write_mutant(lab, m, tmp_path / m.name)
        for e in m.edits:
            text = (tmp_path / m.name / e.file).read_text()
            assert e.replace in text and text != (lab.solution / e.file).read_text()
        assert m.line in (tmp_path / m.name / m.edits[-1].file).read_text()


def test_the_kinds_the_issue_asks_for_are_planted():
    names = {m.name for lab_id in LABS for m in load_mutants(find_lab(lab_id))}
    assert {"use-after-free", "leak", "sleep-under-spinlock", "off-by-one"} <= names


def test_a_find_that_is_not_unique_is_refused():
    m = Mutant("x", "bug", "KASAN", "KASAN", "a", (Edit("f.c", "a", "b"),))
    assert apply(m, {"f.c": b"xa"})["f.c"] == b"xb"
    for text in (b"aa", b"none"):
        with pytest.raises(ValueError, match="finds [02] places, not one"):
            apply(m, {"f.c": text})


def test_a_bad_mutants_file_says_what_and_how_to_fix():
    with pytest.raises(LabError) as e:
        parse_mutants('# planted\n\n[[mutant]]\nname = "x"\ncolor = 1\n', "lab/mutants.toml")
    text = str(e.value)
    assert "lab/mutants.toml:3: error: mutant #1: unknown key 'color'. Fix: use name, bug" in text
    assert "detector must be a non-empty string" in text
    assert "needs [[mutant.edit]] tables" in text
    with pytest.raises(LabError, match="mutants.toml:1"):
        parse_mutants("[[mutant]\n", "lab/mutants.toml")
    edit = '[[mutant.edit]]\nfile = "a.c"\nfind = "x"\nreplace = "y"\n'
    with pytest.raises(LabError) as e:  # a typo in the detector would make the mutant pass everywhere
        parse_mutants(f'[[mutant]]\nname = "../x"\nbug = "b"\ndetector = "kasan"\nfinding = "f"\nline = "l"\n{edit}', "m.toml")
    assert "no detector 'kasan'. Fix: use one of: KASAN, lockdep" in str(e.value) and "name '../x' must be lower-case words" in str(e.value)


MUTANT = Mutant("uaf", "", "KASAN", "KASAN: use-after-free in c_write", "READ_ONCE(kbuf[0])", ())
PLANTED = Frame("c_write", 0x50, "mydebug", True, file="mydebug.c", line=97, source="*ppos = count + (READ_ONCE(kbuf[0]) & 0);", ours=True)


def outcome(detectors=(), findings=(), frames=(), statuses=("pass",), leaks=()):
    """A scored run whose crash reports are `findings`, each with `frames`."""
    checks = tuple(SimpleNamespace(number=n, name=f"c{n}", status=Status(s)) for n, s in enumerate(statuses, 1))
    run = SimpleNamespace(build_failure=None, verdict="", detectors=tuple(detectors), findings=(*findings, *(x.title for x in leaks)),
                          crashes=tuple(SimpleNamespace(title=t) for t in findings), frames=tuple(tuple(frames) for _ in findings),
                          leaks=tuple(leaks))
    return SimpleNamespace(run=run, score=SimpleNamespace(checks=checks))


def test_the_verdict_on_a_kernel_with_the_detector_wants_the_finding_on_the_planted_line():
    title = "KASAN: use-after-free in c_write [mydebug]"
    assert verdict(MUTANT, outcome(["KASAN"], [title], [PLANTED], ["pass", "crashed"])) == (
        f"caught: {title} at mydebug.c:97", None)
    what, defect = verdict(MUTANT, outcome(["KASAN"], [title], [Frame("c_write", 1, "mydebug", True, ours=True)]))
    assert what.startswith("caught") and "no decoded frame shows the planted line" in defect
    assert "is not caught by KASAN" in verdict(MUTANT, outcome(["KASAN"], ["WARNING in x"]))[1]


def test_the_planted_line_must_be_in_the_report_that_names_the_finding():
    from dbgscaffold.runner.leaks import Leak

    leak_mutant = Mutant("leak", "", "kmemleak", "memory leak in c_write", "memdup_user_nul", ())
    site = Frame("c_write", 0x20, "mydebug", False, file="mydebug.c", line=87, source="kbuf = memdup_user_nul(ubuf, count);", ours=True)
    leak = Leak("0x1", 32, "dd", ("0xffffffffa0000020",), frames=(site,))
    assert verdict(leak_mutant, outcome(["kmemleak"], leaks=[leak])) == ("caught: memory leak in c_write at mydebug.c:87", None)
    # the same line in another report (a sleep-in-atomic BUG) does not prove the leak mutant caught
    other = outcome(["kmemleak"], ["BUG: sleeping function called from invalid context in c_write [mydebug]"], [site],
                    leaks=[Leak("0x2", 32, "dd", (), frames=(replace(site, source="other"),))])
    assert "no decoded frame shows the planted line" in verdict(leak_mutant, other)[1]


def test_the_verdict_without_the_detector_wants_every_check_to_pass():
    assert verdict(MUTANT, outcome(["kmemleak"])) == ("passes every check (no KASAN here)", None)
    what, defect = verdict(MUTANT, outcome((), (), (), ["pass", "fail"]))
    assert what == "fails 2 'c2'" and "fails a functional check without KASAN" in defect
