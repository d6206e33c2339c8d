"""kbuild's output turned into diagnostics, and the note for a name the kernel
already declares (gcc says "redeclared", not "that is the kernel's name")."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_tools, run_cli
from dbgscaffold.kbuild import kernel_name_clashes, parse_diagnostics

HEADER = "/usr/src/linux-headers-6.1.0-56-common/include/linux/fs.h"


def clash_output(project: str, declared_in: str) -> str:
    return (
        f"  CC [M]  {project}/vfs_debugfs.o\n"
        f"{project}/vfs_debugfs.c:24:11: error: ‘vfs_read’ redeclared as different kind of symbol\n"
        "   24 | static u8 vfs_read;\n"
        f"{declared_in}:2279:16: note: previous declaration of ‘vfs_read’ with type ‘ssize_t(struct file *)’\n"
        f"{project}/other.c:3:5: error: conflicting types for ‘helper’\n"
        f"{project}/other.h:1:5: note: previous declaration of ‘helper’ with type ‘int(void)’\n"
    )


def test_a_name_declared_by_a_kernel_header_gets_a_note_with_the_fix(tmp_path):
    notes = kernel_name_clashes(clash_output(str(tmp_path), HEADER), tmp_path)
    assert len(notes) == 1  # 'helper' clashes with the project's own header: gcc says enough
    assert notes[0].startswith(f"'vfs_read' is the kernel's own name ({HEADER}:2279)")
    assert "[module].name in dbgscaffold.toml" in notes[0] and "dbgscaffold regen" in notes[0]


def test_no_note_without_a_redeclaration(tmp_path):
    text = clash_output(str(tmp_path), HEADER).replace("redeclared as different kind of symbol", "is unused")
    assert kernel_name_clashes(text, tmp_path) == []


def test_messages_are_charged_to_the_tool_of_their_step():
    out = (
        "  CHECK   /p/m.c\n"
        "/p/m.c:3:1: warning: symbol 'x' was not declared. Should it be static?\n"
        "  CC [M]  /p/m.o\n"
        "/p/m.c:4:2: error: ‘y’ undeclared (first use in this function)\n"
        "/p/m.c:5:2: warning: unused variable ‘z’ [-Wunused-variable]\n"
    )
    assert [(d.tool, d.severity, d.line) for d in parse_diagnostics(out)] == [
        ("sparse", "warning", 3), ("gcc", "error", 4), ("gcc", "warning", 5)]


@pytest.mark.kbuild
def test_build_of_a_module_named_like_a_kernel_subsystem_says_why(tmp_path, kernel_headers):
    """module 'vfs' + entry 'read' makes `static u8 vfs_read`, which linux/fs.h declares."""
    require_tools("make", "gcc")
    spec = tmp_path / "vfs.toml"
    spec.write_text('[module]\nname = "vfs"\n\n[[entry]]\npath = "read"\ntype = "u8"\n')
    r = run_cli("new", "--spec", str(spec), "-o", str(tmp_path / "vfs"))
    assert r.exit_code == 0, r.output
    release = sorted(kernel_headers.values(), key=lambda h: h.version)[0].release
    r = run_cli("build", str(tmp_path / "vfs"), "--kernel", release)
    assert r.exit_code == 3, r.output
    assert "note: 'vfs_read' is the kernel's own name (" in r.output and "include/linux/fs.h:" in r.output, r.output
    assert Path(tmp_path / "vfs").is_dir()
