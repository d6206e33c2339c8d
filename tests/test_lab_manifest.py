"""Lab manifests and folders: every problem names file:line, what and the fix;
discovery finds every lab and reports a broken one without a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from dbgscaffold.lab.manifest import LabError, discover, find_lab, load_lab, parse_check_header, parse_manifest

GOOD = """\
[lab]
id = "tiny"
title = "a tiny lab"
module = "tiny"
debugfs_root = "tiny"

[requires]
profiles = ["debugfs"]
kernels = ["6.1"]

[[task]]
number = 1
title = "the directory"
points = 2
"""

SOURCE = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
static int __init tiny_init(void)
{
\t/* TODO 1: create it */
\tpr_info("hi\\n");
\t/* END TODO 1 */
\treturn 0;
}
module_init(tiny_init);
MODULE_LICENSE("GPL");
"""


def make_lab(root: Path, manifest: str = GOOD, source: str = SOURCE, checks: dict | None = None) -> Path:
    folder = root / "tiny"
    (folder / "solution").mkdir(parents=True)
    (folder / "lab.toml").write_text(manifest)
    (folder / "solution" / "Kbuild").write_text("obj-m := tiny.o\n")
    (folder / "solution" / "tiny.c").write_text(source)
    for rel, text in (checks if checks is not None else {"visible/10-dir.sh": "# task: 1\n# title: dir\nok x\n"}).items():
        (folder / "checks" / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / "checks" / rel).write_text(text)
    return folder


def _problems(text: str, folder: Path = Path("tiny")) -> str:
    with pytest.raises(LabError) as info:
        parse_manifest(text, "tiny/lab.toml", folder)
    return str(info.value)


def test_a_good_manifest_loads_with_defaults():
    lab = parse_manifest(GOOD, "tiny/lab.toml", Path("tiny"))
    assert (lab.id, lab.kind, lab.load_points, lab.order) == ("tiny", "module", 1.0, 100)
    assert lab.tasks[0].points == 2.0 and lab.max_points == 3.0 and lab.kernels == ("6.1",)


def test_syntax_errors_carry_the_line():
    msg = _problems(GOOD.replace('title = "a tiny lab"', "title = a tiny lab"))
    assert "tiny/lab.toml:3:" in msg and "TOML syntax error" in msg


def test_each_bad_value_names_its_line_and_fix():
    bad = (GOOD.replace('id = "tiny"', 'id = "other"').replace('module = "tiny"', 'module = "no-dash"')
           .replace('["debugfs"]', '["debugfs", "nosuch"]').replace("points = 2", "points = -1")
           + '\n[[task]]\nnumber = 1\ntitle = "again"\nbogus = 3\n')
    msg = _problems(bad)
    assert "tiny/lab.toml:2: error: [lab]: id 'other' differs from the folder name 'tiny'. Fix: id = \"tiny\"" in msg
    assert "tiny/lab.toml:4: error: [lab]: module must be the .ko's name" in msg
    assert "tiny/lab.toml:8: error: [requires]: no profile 'nosuch' in kernel_configs/" in msg
    assert "tiny/lab.toml:14: error: task #1: points must be a number > 0, not -1" in msg
    assert "tiny/lab.toml:17: error: task #2: task 1 is declared twice" in msg
    assert "tiny/lab.toml:19: error: task #2: unknown key 'bogus'" in msg
    assert msg.rstrip().endswith("6 errors in the lab")


def test_a_lab_may_ask_for_more_time():
    lab = parse_manifest(GOOD.replace('module = "tiny"', 'module = "tiny"\ntimeout = 300\ncheck_timeout = 45.5'), "tiny/lab.toml", Path("tiny"))
    assert (lab.timeout, lab.check_timeout) == (300.0, 45.5)
    assert parse_manifest(GOOD, "t", Path("tiny")).timeout is None
    msg = _problems(GOOD.replace('module = "tiny"', 'module = "tiny"\ncheck_timeout = 0'))
    assert "tiny/lab.toml:5: error: [lab]: check_timeout must be a number of seconds > 0, not 0. Fix: check_timeout = 120" in msg


def test_an_unknown_kind_is_named_with_the_known_ones():
    msg = _problems(GOOD.replace('module = "tiny"', 'module = "tiny"\nkind = "ebpf"'))
    assert "tiny/lab.toml:5: error: [lab]: unknown kind 'ebpf'. Fix: use one of: module, systemtap." in msg


def test_check_headers():
    assert parse_check_header("#!/bin/sh\n# task: 3\n# title: it works\necho\n", "c.sh")[:2] == (3, "it works")
    task, _, problems = parse_check_header("echo no header\n", "c.sh")
    assert task is None and "c.sh:1: error: no '# task: N' line" in str(problems[0])
    assert "c.sh:2: error: '# task:' needs a task number, not 'two'" in str(parse_check_header("# title: x\n# task: two\n", "c.sh")[2][0])


def test_folder_cross_checks(tmp_path):
    source = SOURCE.replace("/* END TODO 1 */", "/* END TODO 1 */\n\t/* TODO 7: extra */\n\t/* END TODO 7 */")
    folder = make_lab(tmp_path, GOOD + '\n[[task]]\nnumber = 2\ntitle = "unchecked"\n', source,
                      {"hidden/20-x.sh": "# task: 2\nok x\n", "visible/30-y.sh": "# task: 5\nok y\n"})
    with pytest.raises(LabError) as info:
        load_lab(folder)
    msg = str(info.value)
    assert f"{folder}/checks/visible/30-y.sh:1: error: task 5 is not declared in lab.toml" in msg
    assert f"{folder}/lab.toml:11: error: task 1: no visible check scores this task" in msg
    assert f"{folder}/lab.toml:16: error: task 2: no visible check scores this task" in msg
    assert f"{folder}/lab.toml:16: error: task 2: no TODO region in solution/ for this task" in msg
    assert f"{folder}/solution/tiny.c:8: error: TODO 7 has no [[task]] in lab.toml" in msg


def test_marker_errors_in_the_solution_are_reported_with_the_file(tmp_path):
    folder = make_lab(tmp_path, source=SOURCE.replace("\t/* END TODO 1 */\n", ""))
    with pytest.raises(LabError) as info:
        load_lab(folder)
    assert f"{folder}/solution/tiny.c:5: error: TODO 1 is never closed" in str(info.value)


def test_discover_lists_good_labs_and_reports_broken_ones(tmp_path):
    make_lab(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "lab.toml").write_text("[lab\n")
    (tmp_path / "not-a-lab").mkdir()
    found = discover(tmp_path)
    assert [lab.id for lab in found.labs] == ["tiny"]
    assert [name for name, _ in found.broken] == ["broken"]
    assert f"{broken}/lab.toml:1:" in str(found.broken[0][1])


def test_the_shipped_labs_load_and_are_listed():
    found = discover()
    ids = [lab.id for lab in found.labs]
    assert ids[:2] == ["debugfs-basics", "debugfs-fops"]
    basics = find_lab("debugfs-basics")
    assert {c.task for c in basics.checks} == {1, 2, 3, 4, 5} and any(c.hidden for c in basics.checks)
    result = run_cli("lab", "list")
    assert result.exit_code == 0, result.output
    assert "debugfs-basics" in result.stdout and "debugfs-fops" in result.stdout
    assert find_lab.__name__  # keep the import used


def test_an_unknown_lab_names_the_known_ones():
    result = run_cli("lab", "start", "nosuch", "/nonexistent/x")
    assert result.exit_code == 2 and result.exception is None
    assert "error: no lab 'nosuch'. Fix: use one of: debugfs-basics, debugfs-fops" in result.stderr


def test_start_writes_a_skeleton_and_refuses_a_non_empty_dir(tmp_path):
    dest = tmp_path / "work"
    result = run_cli("lab", "start", "debugfs-basics", str(dest))
    assert result.exit_code == 0, result.output
    source = (dest / "mydebug.c").read_text()
    assert "/* TODO 3: the blob file" in source and "debugfs_create_blob(" not in source
    assert "\t(void)b_blob;\n" in source and "skel:" not in source and "END TODO" not in source
    assert sorted(p.name for p in (dest / "tests").iterdir()) == ["10-dir.sh", "20-a.sh", "30-b.sh", "40-c-read.sh", "50-c-write.sh"]
    assert 'lab = "debugfs-basics"' in (dest / ".dbgscaffold-lab").read_text()
    assert (dest / "README.md").is_file() and (dest / "Kbuild").is_file()
    again = run_cli("lab", "start", "debugfs-basics", str(dest))
    assert again.exit_code == 2 and "the directory is not empty" in again.stderr and "--force" in again.stderr
    assert run_cli("lab", "start", "debugfs-basics", str(dest), "--force").exit_code == 0


def test_solution_writes_every_check_and_the_full_sources(tmp_path):
    dest = tmp_path / "sol"
    assert run_cli("lab", "solution", "debugfs-fops", str(dest)).exit_code == 0
    assert (dest / "fopslab.c").read_text() == (REPO / "module_templates/labs/debugfs-fops/solution/fopslab.c").read_text()
    assert (dest / "tests" / "36-concurrent.sh").is_file()  # hidden checks too


def test_check_outside_a_lab_project_says_what_to_do(tmp_path):
    result = run_cli("lab", "check", str(tmp_path))
    assert result.exit_code == 2 and result.exception is None
    assert "not a lab project (no .dbgscaffold-lab)" in result.stderr


def test_a_systemtap_lab_without_its_helper_is_a_precise_error(tmp_path, monkeypatch):
    import importlib

    from dbgscaffold.errors import UserError
    from dbgscaffold.lab import run

    folder = make_lab(tmp_path, GOOD.replace('module = "tiny"', 'module = "tiny"\nkind = "systemtap"'))
    lab = load_lab(folder)
    real = importlib.import_module

    def fake(name, *a):
        if name.endswith(".systemtap"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *a)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(UserError) as info:
        run.LabChecks(lab, hidden=False).prepare(folder, None, tmp_path, None)
    assert "lab 'tiny' is of kind 'systemtap', handled by dbgscaffold.lab.systemtap, which is not installed" in str(info.value)
    shutil.rmtree(folder)


def test_systemtap_scripts_carry_todo_regions_and_are_skeletonized(tmp_path):
    from dbgscaffold.lab.project import project_files

    folder = make_lab(tmp_path, GOOD.replace('module = "tiny"', 'kind = "systemtap"'))
    (folder / "solution" / "tiny.c").unlink()
    (folder / "solution" / "hello.stp").write_text(
        'probe begin\n{\n\t/* TODO 1: say hello */\n\tlog("hello")\n\texit()\n\t/* skel: println("TODO 1") */\n\t/* END TODO 1 */\n}\n')
    lab = load_lab(folder)
    assert [(r.task, r.file) for r in lab.regions] == [(1, "hello.stp")]
    skel = project_files(lab, solution=False)["hello.stp"].decode()
    assert 'log("hello")' not in skel and '\tprintln("TODO 1")\n' in skel


def test_checks_lib_is_shipped_sourced_and_copied_but_not_a_check(tmp_path):
    from dbgscaffold.lab.project import write_project
    from dbgscaffold.lab.run import GUEST_CHECK_LIB, payload_files, plan, run_script

    folder = make_lab(tmp_path, checks={"visible/10-dir.sh": "# task: 1\n# title: dir\nhelper\n",
                                        "hidden/11-more.sh": "# task: 1\nhelper\n", "lib.sh": "helper() { ok helped; }\n"})
    lab = load_lab(folder)
    assert lab.check_lib == folder / "checks" / "lib.sh" and "lib.sh" not in [c.name for c in lab.checks]
    assert f"DBGS_CHECK_LIB={GUEST_CHECK_LIB}" in run_script(lab, plan(lab, False), "6.1")
    ko = tmp_path / "tiny.ko"
    ko.write_bytes(b"\x7fELF")
    for hidden in (False, True):  # lab check and lab grade alike
        shipped = {f.dest: f for f in payload_files(lab, ko, "# run.sh\n", hidden, tmp_path)}
        assert shipped[GUEST_CHECK_LIB].data == b"helper() { ok helped; }\n" and shipped[GUEST_CHECK_LIB].mode == 0o644
    write_project(lab, tmp_path / "work")
    lib = tmp_path / "work" / "tests" / "lib.sh"
    assert lib.read_text() == "helper() { ok helped; }\n" and not lib.stat().st_mode & 0o111  # not run as a test of its own
    assert (tmp_path / "work" / "tests" / "10-dir.sh").stat().st_mode & 0o111


def test_a_lab_without_lib_sh_exports_no_library(tmp_path):
    from dbgscaffold.lab.project import project_files
    from dbgscaffold.lab.run import plan, run_script

    lab = load_lab(make_lab(tmp_path))
    assert lab.check_lib is None and "DBGS_CHECK_LIB" not in run_script(lab, plan(lab, True), "6.1")
    assert "tests/lib.sh" not in project_files(lab, solution=True)


def test_a_check_named_like_the_library_is_an_error(tmp_path):
    folder = make_lab(tmp_path, checks={"visible/10-dir.sh": "# task: 1\nok x\n", "hidden/lib.sh": "# task: 1\nok y\n"})
    with pytest.raises(LabError) as info:
        load_lab(folder)
    assert f"{folder}/checks/hidden/lib.sh: error: a check may not be named lib.sh" in str(info.value)
    assert "Fix: rename it" in str(info.value)


def test_run_user_check_sources_the_lab_library_first(tmp_path):
    """ktap.sh's run_user_check: $DBGS_CHECK_LIB's functions exist in the check's shell."""
    import subprocess

    from conftest import require
    from dbgscaffold.runner import checks
    from dbgscaffold.vm.initramfs import BUSYBOX

    require(BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    ktap = tmp_path / "ktap.sh"
    # _user sources the library from its guest path: point it at this copy.
    ktap.write_text(checks.guest_library().replace(". /checks/ktap.sh;", f". {ktap};"))
    (tmp_path / "lib.sh").write_text("helper() { ok \"helped by $MODULE\"; }\n")
    (tmp_path / "check.sh").write_text("helper\n")
    out = tmp_path / "fd3"
    script = f"exec 3>{out}\n. {ktap}\nrun_user_check 1 c {tmp_path}/check.sh\n"
    env = {"PATH": "/usr/bin:/bin", "DBGS_TMP": str(tmp_path), "DBGS_KMSG": str(tmp_path / "kmsg"), "MODULE": "tiny",
           "DBGS_CHECK_LIB": str(tmp_path / "lib.sh")}
    subprocess.run([str(BUSYBOX), "sh", "-c", script], env=env, timeout=30, check=True, stdin=subprocess.DEVNULL)
    assert "  ok 1 helped by tiny\n" in out.read_text() and "\nok 1 c\n" in out.read_text()


SCRIPT = "#!/bin/sh\ncase $1 in\nfunction)\n    # TODO 1: the tracer\n    echo function > current_tracer\n    # END TODO 1\n    ;;\nesac\n"


def test_student_files_are_shipped_from_the_project_and_skeletonized(tmp_path):
    from dbgscaffold.lab.project import project_files
    from dbgscaffold.lab.run import GUEST_PROJECT, payload_files, plan, run_script

    folder = make_lab(tmp_path, GOOD.replace('debugfs_root = "tiny"', 'debugfs_root = "tiny"\nstudent_files = ["trace.sh"]'))
    (folder / "solution" / "trace.sh").write_text(SCRIPT)
    lab = load_lab(folder)
    assert lab.student_files == ("trace.sh",) and [(r.task, r.file) for r in lab.regions] == [(1, "tiny.c"), (1, "trace.sh")]
    assert "echo function" not in project_files(lab, solution=False)["trace.sh"].decode()
    assert f"PROJECT={GUEST_PROJECT}" in run_script(lab, plan(lab, True), "6.1")
    project = tmp_path / "student"
    project.mkdir()
    (project / "trace.sh").write_text("echo mine\n")  # the student's copy, not the lab's
    ko = tmp_path / "tiny.ko"
    ko.write_bytes(b"\x7fELF")
    shipped = {f.dest: f for f in payload_files(lab, ko, "# run.sh\n", False, project)}
    assert shipped[f"{GUEST_PROJECT}/trace.sh"].data == b"echo mine\n" and shipped[f"{GUEST_PROJECT}/trace.sh"].mode == 0o755
    (project / "trace.sh").unlink()  # deleted: not shipped, the checks that run it fail
    assert not any(f.dest.startswith(GUEST_PROJECT) for f in payload_files(lab, ko, "# run.sh\n", False, project))
    plain = load_lab(make_lab(tmp_path / "plain"))
    assert "PROJECT=" not in run_script(plain, plan(plain, True), "6.1")


def test_a_student_file_missing_from_the_solution_names_it_and_the_fix(tmp_path):
    folder = make_lab(tmp_path, GOOD.replace('debugfs_root = "tiny"', 'debugfs_root = "tiny"\nstudent_files = ["trace.sh"]'))
    with pytest.raises(LabError) as info:
        load_lab(folder)
    assert (f"{folder}/lab.toml:6: error: [lab]: student_files: no file {folder}/solution/trace.sh. "
            "Fix: add solution/trace.sh (the working version, with TODO markers), or remove 'trace.sh' from student_files") in str(info.value)


@pytest.mark.parametrize("value,message", [
    ('"trace.sh"', "student_files must be a list of file names in solution/, not 'trace.sh'"),
    ('["../x.sh"]', "student_files: '../x.sh' must be a path relative to solution/"),
    ('["/etc/x.sh"]', "student_files: '/etc/x.sh' must be a path relative to solution/"),
])
def test_bad_student_files_are_manifest_errors(value, message):
    msg = _problems(GOOD.replace('debugfs_root = "tiny"', f'debugfs_root = "tiny"\nstudent_files = {value}'))
    assert f"tiny/lab.toml:6: error: [lab]: {message}" in msg


def test_student_files_are_for_module_labs():
    msg = _problems(GOOD.replace('debugfs_root = "tiny"', 'debugfs_root = "tiny"\nkind = "systemtap"\nstudent_files = ["a.sh"]'))
    assert "student_files is for labs of kind \"module\"" in msg
