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
