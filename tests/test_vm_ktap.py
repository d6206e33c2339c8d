"""vm.ktap: the tolerant KTAP parser."""

from __future__ import annotations

import textwrap

import pytest

from dbgscaffold.vm.ktap import parse


def k(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_simple_document():
    doc = parse(k("""
        KTAP version 1
        1..2
        ok 1 debugfs mounted
        ok 2 uname
    """))
    assert doc.version == "KTAP version 1" and doc.plan == 2
    assert [(t.number, t.name, t.status) for t in doc.tests] == [(1, "debugfs mounted", "pass"), (2, "uname", "pass")]
    assert doc.ok and not doc.problems and doc.counts() == {"pass": 2}


@pytest.mark.parametrize(
    "line,status,directive,reason",
    [
        ("ok 1 t # SKIP no debugfs", "skip", "SKIP", "no debugfs"),
        ("not ok 1 t # SKIP not here", "skip", "SKIP", "not here"),
        ("not ok 1 t # TODO not written", "todo", "TODO", "not written"),
        ("not ok 1 t # XFAIL known bug", "xfail", "XFAIL", "known bug"),
        ("ok 1 t # XFAIL", "pass", "XFAIL", ""),
        ("not ok 1 t # TIMEOUT 45 s", "timeout", "TIMEOUT", "45 s"),
        ("ok 1 t # timeout", "timeout", "TIMEOUT", ""),
        ("not ok 1 t # ERROR setup failed", "error", "ERROR", "setup failed"),
        ("not ok 1 t", "fail", "", ""),
        ("not ok 1 t # expected 3 got 4", "fail", "", "expected 3 got 4"),
        ("ok 1 - t", "pass", "", ""),  # TAP's dash
    ],
)
def test_directives(line, status, directive, reason):
    t = parse(f"KTAP version 1\n1..1\n{line}\n").tests[0]
    assert (t.name, t.status, t.directive, t.reason) == ("t", status, directive, reason)


def test_failures_make_the_document_fail():
    doc = parse("KTAP version 1\n1..3\nok 1 a\nnot ok 2 b\nok 3 c # SKIP x\n")
    assert doc.failed and not doc.ok and doc.counts() == {"pass": 1, "fail": 1, "skip": 1}


def test_diagnostics_go_with_the_following_result():
    doc = parse(k("""
        KTAP version 1
        1..2
        # loading module
        random kernel chatter
        ok 1 load
        # reading /sys/kernel/debug/x
        # expected 3, got 4
        not ok 2 read
        # Totals: pass:1 fail:1
    """))
    assert doc.tests[0].diagnostics == ("loading module", "random kernel chatter")
    assert doc.tests[1].diagnostics == ("reading /sys/kernel/debug/x", "expected 3, got 4")
    assert doc.diagnostics == ("Totals: pass:1 fail:1",)


def test_missing_results_are_crashed_with_the_last_words():
    doc = parse(k("""
        KTAP version 1
        1..4
        ok 1 a
        # about to poke
        BUG: kernel NULL pointer dereference, address: 0000000000000000
    """))
    assert [t.status for t in doc.tests] == ["pass", "crashed", "crashed", "crashed"]
    assert doc.tests[1].diagnostics == ("about to poke", "BUG: kernel NULL pointer dereference, address: 0000000000000000")
    assert doc.tests[2].diagnostics == ()
    assert doc.failed and any("no result for test 2, 3, 4 of 1..4" in p for p in doc.problems)


def test_results_beyond_the_plan_are_flagged():
    doc = parse("KTAP version 1\n1..1\nok 1 a\nok 2 b\n")
    assert doc.tests[1].beyond_plan and doc.tests[1].status == "pass"
    assert doc.failed and any("beyond the plan 1..1" in p for p in doc.problems)


def test_out_of_order_and_duplicate_plan_are_problems():
    doc = parse("KTAP version 1\n1..2\nok 2 b\nok 1 a\n1..5\n")
    assert [t.number for t in doc.tests] == [1, 2]
    assert any("test 2 where test 1" in p for p in doc.problems)
    assert any("second plan" in p for p in doc.problems)


def test_printk_prefix_stripped_by_where_ktap_version_starts():
    console = k("""
        [    0.312000] PCI: Fatal: No config space access function found
        [    1.000001] KTAP version 1
        [    1.000002] 1..1
        [    1.000003]     KTAP version 1
        [    1.000004]     # Subtest: example
        [    1.000005]     1..2
        [    1.000006]     ok 1 example_simple_test
        [    1.000007]     ok 2 example_skip_test # SKIP this test should be skipped
        [    1.000008] # example: pass:1 fail:0 skip:1 total:2
        [    1.000009] ok 1 example
    """)
    doc = parse(console)
    assert doc.plan == 1 and not doc.problems
    suite = doc.tests[0]
    assert suite.name == "example" and suite.status == "pass"
    sub = suite.subtests
    assert sub.name == "example" and sub.plan == 2 and sub.version == "KTAP version 1"
    assert [(t.name, t.status) for t in sub.tests] == [("example_simple_test", "pass"), ("example_skip_test", "skip")]
    assert suite.diagnostics == ("example: pass:1 fail:0 skip:1 total:2",)


def test_other_timestamp_widths_and_log_levels_are_stripped_too():
    doc = parse("<6>[    9.999999] KTAP version 1\n<6>[   10.000000] 1..1\n[   10.5] ok 1 a\n")
    assert doc.tests[0].name == "a" and not doc.problems


def test_noise_before_the_version_line_is_ignored_and_crlf_is_fine():
    doc = parse("garbage\r\nok 99 not this\r\nKTAP version 1\r\n1..1\r\nok 1 a\r\n")
    assert [t.number for t in doc.tests] == [1] and doc.tests[0].name == "a"


def test_nested_subtests_with_failure_inside():
    doc = parse(k("""
        KTAP version 1
        1..2
          KTAP version 1
          # Subtest: suite_a
          1..2
          ok 1 case_1
          not ok 2 case_2
        not ok 1 suite_a
          KTAP version 1
          # Subtest: suite_b
          1..1
            KTAP version 1
            1..1
            ok 1 deep
          ok 1 param
        ok 2 suite_b
    """))
    assert not doc.problems, doc.problems
    a, b = doc.tests
    assert a.status == "fail" and a.subtests.tests[1].status == "fail"
    assert b.status == "pass" and b.subtests.tests[0].subtests.tests[0].name == "deep"


def test_parent_ok_over_a_failing_child_is_not_believed():
    doc = parse("KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  not ok 1 x\nok 1 s\n")
    assert doc.tests[0].status == "fail"


def test_subtest_block_cut_short_makes_its_parent_crashed():
    doc = parse("KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: s\n  1..3\n  ok 1 x\n")
    (t,) = doc.tests
    assert t.status == "crashed" and t.name == "s"
    assert [c.status for c in t.subtests.tests] == ["pass", "crashed", "crashed"]


def test_old_kunit_style_without_nested_version_lines():
    doc = parse(k("""
        TAP version 14
        1..2
            # Subtest: one
            1..1
            ok 1 - a
        ok 1 - one
            # Subtest: two
            1..1
            not ok 1 - b
        not ok 2 - two
    """))
    assert [(t.name, t.status, t.subtests.name) for t in doc.tests] == [("one", "pass", "one"), ("two", "fail", "two")]
    assert not doc.problems


def test_empty_skip_plan():
    doc = parse("KTAP version 1\n1..0 # SKIP no debugfs here\n")
    assert doc.plan == 0 and doc.plan_reason == "SKIP no debugfs here" and doc.ok


def test_no_output_at_all():
    for text in ("", "\n\n", "just a kernel log\nnothing else\n"):
        doc = parse(text)
        assert not doc.ok and doc.problems == ("no KTAP output",)


def test_no_version_line_is_tolerated_but_noted():
    doc = parse("1..1\nok 1 a\n")
    assert doc.tests[0].status == "pass" and doc.problems == ("no 'KTAP version' line",)


def test_no_plan_is_noted():
    doc = parse("KTAP version 1\nok 1 a\n")
    assert doc.tests[0].status == "pass" and "no plan line" in doc.problems


def test_bail_out_and_second_document():
    doc = parse("KTAP version 1\n1..2\nok 1 a\nBail out! no more\nKTAP version 1\n1..1\nok 1 z\n")
    assert any("Bail out! no more" in p for p in doc.problems)
    assert any("second KTAP document" in p for p in doc.problems)
    assert [t.status for t in doc.tests] == ["pass", "crashed"]


def test_hash_in_description_is_a_reason_separator():
    t = parse("KTAP version 1\n1..1\nnot ok 1 reads x # got 4 # not 3\n").tests[0]
    assert t.name == "reads x" and t.reason == "got 4 # not 3"


def test_never_raises_on_garbage():
    import random

    rng = random.Random(7)
    pieces = ["KTAP version 1", "1..3", "ok 1 a", "not ok 2", "  ok 1 x", "  1..1", "    KTAP version 1", "# d", "Bail out!", "ok", "1..", "\t ok 3 c # SKIP", "\x00\xff", ""]
    for _ in range(500):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
        parse(text)
