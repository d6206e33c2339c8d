"""generator/elf.py against the real thing: host binaries, as readelf sees them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import require_tools
from dbgscaffold import elf

LS = Path("/bin/ls")


def test_segments_and_notes_agree_with_readelf():
    require_tools("readelf")
    data = LS.read_bytes()
    read = elf.of_bytes(data)
    types = [t for t, _, _ in elf.segments(read)]
    listed = subprocess.run(["readelf", "-lW", str(LS)], capture_output=True, text=True, check=True).stdout
    assert types.count(elf.PT_INTERP) == listed.count("  INTERP ") == 1
    assert types.count(elf.PT_NOTE) == len(re.findall(r"^\s+NOTE\s", listed, re.M))
    build_id = [d for name, t, d in elf.notes(read) if name == b"GNU" and t == 3]
    shown = subprocess.run(["readelf", "-n", str(LS)], capture_output=True, text=True, check=True).stdout
    assert [d.hex() for d in build_id] == re.findall(r"Build ID: ([0-9a-f]+)", shown)


def test_a_static_binary_has_no_interpreter_and_junk_is_no_elf():
    busybox = Path("/bin/busybox")
    if busybox.is_file():
        types = [t for t, _, _ in elf.segments(elf.of_bytes(busybox.read_bytes()))]
        assert elf.PT_INTERP not in types and types
    for junk in (b"", b"\x7fELF", b"\x7fELF\x03\x01" + bytes(60), b"#!/bin/sh\n" * 10):
        with pytest.raises(ValueError):
            elf.header(elf.of_bytes(junk))


def test_a_truncated_program_header_table_is_an_error():
    data = LS.read_bytes()
    h = elf.header(elf.of_bytes(data))
    cut = data[: h.phoff + h.phentsize]  # the first entry only
    with pytest.raises(ValueError, match="truncated"):
        elf.segments(elf.of_bytes(cut))
