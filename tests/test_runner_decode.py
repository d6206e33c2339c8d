"""Decoded frames without a VM: a generated module's frames name their spec entry."""

from __future__ import annotations

from dbgscaffold.runner.decode import Frame, name_entries


def test_a_generated_modules_frames_name_their_spec_entry():
    c_names = (("m_a", "a"), ("m_a_b", "a/b"), ("m_log", "log"))
    frames = [Frame("m_a_b_write", 1, "m", False), Frame("m_a_read.constprop.0", 1, "m", False), Frame("m_log_show", 1, "m", False),
              Frame("textbuf_write", 1, "m", True), Frame("helper", 1, "m", False)]
    named = name_entries(frames, c_names, charged="log")
    assert [f.entry for f in named] == ["a/b", "a", "log", "log", ""]  # the longest prefix wins; textbuf: the check's entry
    assert [f.entry for f in name_entries(frames, c_names)][3] == ""  # a shared handler outside an entry's check: nobody's
    assert str(named[3]) == "textbuf_write+0x1 [m] (textbuf_write, entry 'log')"


def test_kernel_frames_are_the_ones_without_a_module():
    from pathlib import Path

    from dbgscaffold.runner.decode import kernel_frames, module_frames

    log = (Path(__file__).resolve().parent / "data" / "vm_crash" / "debug-6.1-refcount.log").read_text()
    kernel = kernel_frames(log)
    rip = [f for f in kernel if f.exact]
    assert [(f.function, f.offset) for f in rip] == [("refcount_warn_saturate", 0x11d)]  # the RIP line
    names = [f.function for f in kernel]
    assert "do_one_initcall" in names and "rcbug_init" not in names and all(f.module == "" for f in kernel)
    guessed = next(f for f in kernel if f.function == "kasan_unpoison")
    assert not guessed.reliable  # "? kasan_unpoison+0x42/0x50"
    assert [f.function for f in module_frames(log)] == ["rcbug_init"]


def test_a_dwarf_path_never_leads_out_of_the_project(tmp_path):
    """The DWARF is the submission's to write: `#line 1 "x/../../../etc/passwd"` or a symlink
    named like a source must not make the report quote a host file."""
    from dbgscaffold.runner.decode import _in_project

    project = tmp_path / "p"
    (project / "sub").mkdir(parents=True)
    (project / "m.c").write_text("int x;\n")
    (project / "sub" / "u.c").write_text("int y;\n")
    (project / "evil.c").symlink_to("/etc/passwd")
    assert _in_project("/build/m.c", project) == project / "m.c"
    assert _in_project("/build/sub/u.c", project) == project / "sub" / "u.c"
    assert _in_project("/build/x/../../../../etc/passwd", project) is None
    assert _in_project("/tmp/work/" + "../" * 12 + "etc/passwd", project) is None
    assert _in_project("/build/evil.c", project) is None
