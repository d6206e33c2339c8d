"""kmemleak's findings without a VM: the guest's filter (ktap.sh under the host's static
busybox), the host's parser on a real report of the debug kernel, a bare address turned
back into a module's function, and the plan that asks for it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import require
from dbgscaffold.runner import checks, leaks
from dbgscaffold.runner.decode import frames_at
from dbgscaffold.vm.initramfs import BUSYBOX

DATA = Path(__file__).resolve().parent / "data"
LIBRARY = Path(__file__).resolve().parent.parent / "module_templates" / "guest" / "ktap.sh"
# `dbgscaffold test tests/data/handwritten/leak --kernel debug-6.1` (and 6.12): the check's diagnostics.
# 6.1 prints each frame after "[<(____ptrval____)>] ", 6.12 bare.
REAL = {s: (DATA / "vm_crash" / f"debug-{s}-kmemleak.txt").read_text().splitlines() for s in ("6.1", "6.12")}

KERNEL_LEAK = """unreferenced object 0xff11000003a1c000 (size 32):
  comm "swapper/0", pid 1, jiffies 4294892296
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<(____ptrval____)>] __kmem_cache_alloc_node+0x10b/0x11e
    [<(____ptrval____)>] kstrdup+0x2f/0x5c
    [<(____ptrval____)>] kernel_init_freeable+0x1b2/0x2cf
"""
LOADED_LEAK = """unreferenced object 0xff11000003a1c080 (size 64):
  comm "sh", pid 90, jiffies 4294893000
  backtrace:
    [<(____ptrval____)>] kmalloc_trace+0x1f/0x53
    [<(____ptrval____)>] mydebug_write+0x2c/0x90 [mydebug]
    [<(____ptrval____)>] full_proxy_write+0x5c/0x80
"""


def filtered(tmp_path, text: str) -> tuple[int, list[str]]:
    """dbgs_module_leaks on `text`: its exit status and its diagnostics."""
    require(BUSYBOX.is_file(), "static busybox")
    (tmp_path / "kmemleak").write_text(text)
    (tmp_path / "results").write_text("")
    script = f'. {LIBRARY}; exec 3>>{tmp_path}/results; dbgs_module_leaks {tmp_path}/kmemleak'
    env = {**os.environ, "DBGS_KMSG": "/dev/null", "DBGS_TMP": str(tmp_path)}
    rc = subprocess.run([str(BUSYBOX), "sh", "-c", script], env=env, timeout=30).returncode
    return rc, [x[2:] for x in (tmp_path / "results").read_text().splitlines()]


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_the_guest_keeps_only_objects_with_a_module_frame(tmp_path, series):
    real = "\n".join(x.removeprefix("kmemleak: ") for x in REAL[series] if x.startswith("kmemleak: ")) + "\n"
    rc, diags = filtered(tmp_path, KERNEL_LEAK + real + LOADED_LEAK)
    assert rc == 0
    objects = [d for d in diags if "unreferenced object" in d]
    assert len(objects) == 5 and not any("0xff11000003a1c000" in d for d in objects)  # the kernel's own is not ours
    assert objects[-1] == "kmemleak: unreferenced object 0xff11000003a1c080 (size 64):"
    assert "kmemleak:     [<(____ptrval____)>] mydebug_write+0x2c/0x90 [mydebug]" in diags


def test_the_guest_shows_at_most_twenty_objects(tmp_path):
    rc, diags = filtered(tmp_path, KERNEL_LEAK + LOADED_LEAK * 25)
    assert rc == 0 and sum("unreferenced object" in d for d in diags) == 20
    assert diags[-1] == "kmemleak-more: up to 6 more objects (the kernel's own among them), not shown"
    assert len(leaks.parse(diags)[0]) == 20


def test_the_guest_finds_nothing_in_the_kernels_own_leaks(tmp_path):
    assert filtered(tmp_path, KERNEL_LEAK) == (1, [])
    assert filtered(tmp_path, "") == (1, [])


def test_the_real_reports_parse_into_leaks_and_sections():
    found, sections = leaks.parse(REAL["6.1"])
    assert len(found) == 4 and {x.size for x in found} == {96} and {x.comm for x in found} == {"insmod"}
    assert found[0].backtrace[:3] == ("__kmem_cache_alloc_node+0x10b/0x11e", "kmalloc_trace+0x1f/0x53", "0xffffffffa0008022")
    assert ("leak", ".init.text", 0xffffffffa0008000) in sections and len(sections) == len(set(sections)) == 4
    found, sections = leaks.parse(REAL["6.12"])
    assert len(found) == 4 and found[0].backtrace[:3] == ("__kmalloc_cache_noprof+0x15c/0x192", "0xffffffffa0018040", "do_one_initcall+0xcd/0x1ec")
    assert any(s[:2] == ("leak", ".init.text") for s in sections)
    assert found[0].title == "memory leak in a module"  # nothing decoded yet
    one = leaks.Leak("0x1", 96, "insmod", ())
    assert leaks.distinct([one, one, leaks.Leak("0x2", 8, "sh", ())]) == [(one, 2), (leaks.Leak("0x2", 8, "sh", ()), 1)]


def test_a_bare_address_is_a_function_of_the_module_that_lay_there(tmp_path, kernel_headers):
    """The leak fixture built for a Debian kernel: an address inside the .init.text noted
    for it is leak_init and decodes to leak.c; one outside every section is nobody's."""
    from dbgscaffold.runner.build import build_modules

    headers = kernel_headers["6.1"]
    built = build_modules(DATA / "handwritten" / "leak", headers.build_dir, headers.release, tmp_path / "build")
    kos = {m.name: m.debug_ko for m in built.modules}
    sections = [("leak", ".init.text", 0xffffffffa0008000), ("leak", ".text.exit", 0xffffffffa000000c)]
    frame, outside = frames_at([0xffffffffa0008005, 0xffffffffa0100000], sections, kos)
    assert outside is None
    assert frame is not None and frame.function == "leak_init" and frame.module == "leak" and not frame.exact
    decoded = leaks.decoded(leaks.Leak("0x1", 96, "insmod", ("kmalloc_trace+0x1f/0x53", "0xffffffffa0008005")), sections, kos,
                            DATA / "handwritten" / "leak")
    assert decoded.site is not None and decoded.site.file == "leak.c" and decoded.site.ours
    assert decoded.title == "memory leak in leak_init"
    # the same address under two loads' code (freed module memory is reused): no guess
    reused = [*sections, ("leak", ".exit.text", 0xffffffffa0008000)]
    assert frames_at([0xffffffffa0008005], reused, kos) == [None]


@pytest.mark.parametrize("leak_check", [False, True])
def test_the_leak_check_comes_last_only_where_kmemleak_is(leak_check):
    run = checks.RunPlan((checks.GuestModule("m", "/m.ko"),), None, user_scripts=("/t.sh",), leak_check=leak_check)
    names = [c.name for c in checks.plan(run, (6, 1, 0))]
    assert (names[-1] == "no memory leaked") == leak_check and names.count("no memory leaked") == int(leak_check)
    first = checks.plan(run, (6, 1, 0))[0]
    assert first.body.startswith("dbgs_leaks_reset; ") == leak_check  # a VM's earlier project leaves no leak behind
    # it waits and scans for ~10 s whatever the per-check limit: its own limit is at least a minute
    assert (f"'no memory leaked' check_{len(names)} 60\n" in checks.script(run, (6, 1, 0), check_timeout=3)) == leak_check


def guest(tmp_path, script: str, kmemleak: bool = True) -> tuple[int, list[str]]:
    """`script` after sourcing the guest library, on a fake debugfs and /sys/module under
    tmp_path (module m with two code sections), a fake insmod on PATH."""
    require(BUSYBOX.is_file(), "static busybox")
    debugfs, sysmodule, bin_ = tmp_path / "debugfs", tmp_path / "sys" / "module", tmp_path / "bin"
    for d in (debugfs, sysmodule / "m" / "sections", bin_):
        d.mkdir(parents=True, exist_ok=True)
    if kmemleak:
        (debugfs / "kmemleak").write_text("")
    (sysmodule / "m" / "sections" / ".text").write_text("0xffffffffa0000000\n")
    (sysmodule / "m" / "sections" / ".init.text").write_text("0xffffffffa0008000\n")
    (sysmodule / "m" / "sections" / ".data").write_text("0xffffffffa0002000\n")
    (bin_ / "insmod").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "insmod").chmod(0o755)
    (tmp_path / "results").write_text("")
    env = {**os.environ, "DBGS_KMSG": "/dev/null", "DBGS_TMP": str(tmp_path), "DBGS_DEBUGFS": str(debugfs),
           "DBGS_SYSMODULE": str(sysmodule), "DBGS_LEAK_AGE_CS": "0", "DBGS_INSMOD": str(bin_ / "insmod")}
    rc = subprocess.run([str(BUSYBOX), "sh", "-c", f". {LIBRARY}; exec 3>>{tmp_path}/results; {script}"], env=env, timeout=30).returncode
    return rc, [x[2:] for x in (tmp_path / "results").read_text().splitlines()]


def test_every_insmod_notes_the_code_sections_and_a_payload_starts_clean(tmp_path):
    rc, _ = guest(tmp_path, "insmod /run/payload/m.ko && insmod /x/m.ko p=1")
    assert rc == 0
    assert (tmp_path / ".dbgs-sections").read_text().splitlines() == [
        "m .init.text:0xffffffffa0008000", "m .text:0xffffffffa0000000"] * 2  # code only, at each load
    rc, _ = guest(tmp_path, "dbgs_leaks_reset")
    assert rc == 0 and not (tmp_path / ".dbgs-sections").exists() and (tmp_path / "debugfs" / "kmemleak").read_text() == "clear\n"


def test_the_leak_check_passes_on_nothing_and_skips_without_kmemleak(tmp_path):
    assert guest(tmp_path, "dbgs_no_leaks") == (0, [])  # two scans of the fake file, nothing reported
    assert (tmp_path / "debugfs" / "kmemleak").read_text() == "scan\n"
    rc, diags = guest(tmp_path / "stock", "dbgs_no_leaks", kmemleak=False)
    assert rc == 4 and diags == ["this kernel has no kmemleak (a debug kernel has: dbgscaffold kernel build)"]
    rc, _ = guest(tmp_path / "stock", "insmod /run/payload/m.ko", kmemleak=False)
    assert rc == 0 and not (tmp_path / "stock" / ".dbgs-sections").exists()  # nothing noted without kmemleak

