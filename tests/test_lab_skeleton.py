"""Skeletons from TODO markers (pure): kept and dropped lines, skel lines, and
precise errors for nested, unclosed, mismatched and malformed markers."""

from __future__ import annotations

import pytest

from dbgscaffold.lab.skeleton import SkeletonError, skeleton_text, todo_at

SOLUTION = """\
int f(void)
{
\t/* TODO 1: return the answer */
\tint x = 42;

\treturn x;
\t/* skel: return 0; */
\t/* END TODO 1 */
}

void g(void)
{
\t/* TODO 2: do nothing twice */
\tnothing();
\t/* END TODO 2 */
}
"""


def test_skeleton_keeps_the_todo_line_drops_the_region_and_unwraps_skel_lines():
    text, regions = skeleton_text(SOLUTION, "f.c")
    assert text == (
        "int f(void)\n{\n\t/* TODO 1: return the answer */\n\treturn 0;\n}\n\n"
        "void g(void)\n{\n\t/* TODO 2: do nothing twice */\n}\n"
    )
    assert [(r.task, r.text, r.start, r.end) for r in regions] == [(1, "return the answer", 3, 8), (2, "do nothing twice", 13, 15)]


def test_a_file_without_markers_is_unchanged():
    assert skeleton_text("int x;\n/* a TODO-free comment */\n") == ("int x;\n/* a TODO-free comment */\n", [])


def _error(text: str) -> str:
    with pytest.raises(SkeletonError) as info:
        skeleton_text(text, "lab/x.c")
    return str(info.value)


def test_nested_regions_are_an_error_at_the_inner_marker():
    msg = _error("/* TODO 1: a */\n/* TODO 2: b */\n/* END TODO 2 */\n/* END TODO 1 */\n")
    assert "lab/x.c:2: error: TODO 2 opens inside TODO 1 (opened at line 1); regions do not nest" in msg
    assert "Fix: close it first with /* END TODO 1 */" in msg


def test_an_unclosed_region_is_reported_where_it_opens():
    msg = _error("x;\n/* TODO 3: never closed */\ny;\n")
    assert "lab/x.c:2: error: TODO 3 is never closed. Fix: add /* END TODO 3 */" in msg


def test_mismatched_end_and_stray_end_and_stray_skel():
    msg = _error("/* TODO 1: a */\n/* END TODO 2 */\n/* END TODO 4 */\n/* skel: x; */\n")
    assert "lab/x.c:2: error: END TODO 2 closes TODO 1 (opened at line 1). Fix: write /* END TODO 1 */" in msg
    assert "lab/x.c:3: error: END TODO 4 without an open TODO 4" in msg
    assert "lab/x.c:4: error: a skel: line outside a TODO region" in msg


@pytest.mark.parametrize("line", ["/* TODO 2 create it */", "x = 1; /* TODO 2: inline */", "/*TODO 3: no space */", "/* END TODO two */"])
def test_malformed_markers_are_errors_not_silently_kept(line):
    msg = _error(f"int a;\n{line}\n")
    assert "lab/x.c:2: error: malformed marker" in msg and "Fix: write '/* TODO n: text */'" in msg


def test_todo_at_finds_the_region_of_a_student_line_and_stops_at_the_function_end():
    skel, _ = skeleton_text(SOLUTION)
    student = skel.replace("\treturn 0;\n", "\tint *p = 0;\n\n\treturn *p;\n")
    lines = student.splitlines()
    crash = lines.index("\treturn *p;") + 1
    region = todo_at(student, crash)
    assert region is not None and region.task == 1 and region.start == 3
    after = lines.index("void g(void)") + 1
    assert todo_at(student, after) is None  # between functions: no TODO
    assert todo_at(student, 1) is None


def test_only_strips_just_the_named_tasks_for_one_task_mutants():
    text, regions = skeleton_text(SOLUTION, "f.c", only=frozenset({2}))
    assert len(regions) == 2
    assert "\tint x = 42;\n" in text and "/* END TODO 1 */" in text and "/* skel: return 0; */" in text
    assert "nothing();" not in text and "/* TODO 2: do nothing twice */\n}" in text
    assert skeleton_text(SOLUTION, only=frozenset({1, 2}))[0] == skeleton_text(SOLUTION)[0]
    assert skeleton_text(SOLUTION, only=frozenset())[0] == SOLUTION


SCRIPT = """\
#!/bin/sh
case $1 in
function)
    # TODO 1: the function tracer on mytrace_step
    echo mytrace_step > set_ftrace_filter
    # skel: : nothing yet
    # END TODO 1
    ;;
esac
echo done  # a plain comment stays
"""


def test_shell_scripts_take_their_markers_as_shell_comments():
    skel, regions = skeleton_text(SCRIPT, "lab/trace.sh")
    assert [(r.task, r.text, r.start, r.end) for r in regions] == [(1, "the function tracer on mytrace_step", 4, 7)]
    assert skel == SCRIPT.replace("    echo mytrace_step > set_ftrace_filter\n    # skel: : nothing yet\n    # END TODO 1\n", "    : nothing yet\n")
    # C markers mean nothing in a script, and the other way round
    assert skeleton_text("/* TODO 1: x */\n", "lab/t.sh")[1] == [] and skeleton_text("# TODO 1: x\n", "lab/x.c")[1] == []


def test_shell_marker_errors_show_the_shell_forms():
    with pytest.raises(SkeletonError) as info:
        skeleton_text("# TODO 1: a\n# TODO: later\necho\n", "lab/trace.sh")
    msg = str(info.value)
    assert "lab/trace.sh:2: error: malformed marker: '# TODO: later'. Fix: write '# TODO n: text', '# END TODO n' or '# skel: CODE' alone on the line" in msg
    assert "lab/trace.sh:1: error: TODO 1 is never closed. Fix: add # END TODO 1 after its code" in msg
