"""vm.checks: the guest check script derived from a spec, and its shell library.

The helpers run here under the host's static busybox (the guest's shell), on
plain files, so each is shown to pass on the right answer and fail on a wrong one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import require
from dbgscaffold.spec import parse_spec
from dbgscaffold.vm import checks
from dbgscaffold.vm.initramfs import BUSYBOX

SPECS = Path(__file__).resolve().parent.parent / "generator" / "specs"


def classic():
    return parse_spec((SPECS / "classic.toml").read_text(), name_override="mydebug")


def example():
    return parse_spec((SPECS / "example.toml").read_text())


def ash(script: str, tmp_path: Path) -> tuple[int, str, str]:
    """Run `script` under busybox ash with the guest library at hand; fd 3 -> a file."""
    require(BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    lib = tmp_path / "ktap.sh"
    lib.write_text(checks.guest_library())
    out = tmp_path / "fd3"
    proc = subprocess.run(
        [str(BUSYBOX), "sh", "-c", f"exec 3>{out}\n. {lib}\n{script}\n"],
        capture_output=True, text=True, cwd=tmp_path, timeout=30,
        stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "DBGS_TMP": str(tmp_path)},
    )
    return proc.returncode, out.read_text() if out.exists() else "", proc.stderr


def test_printf_format_round_trips_every_byte(tmp_path):
    data = bytes(range(256)) + b"%s%%\\'\"$(reboot)`x`"
    fmt = checks.printf_format(data)
    assert fmt.startswith("'") and fmt.endswith("'") and "'" not in fmt[1:-1] and "%" not in fmt
    require(BUSYBOX.is_file(), "static busybox")
    got = subprocess.run([str(BUSYBOX), "sh", "-c", f"printf {fmt}"], capture_output=True, timeout=10).stdout
    assert got == data


def test_classic_plan_on_6_1_and_6_12():
    names61 = [c.name for c in checks.plan(classic(), (6, 1, 0), "/lib/modules/mydebug.ko")]
    names612 = [c.name for c in checks.plan(classic(), (6, 12, 0), "/lib/modules/mydebug.ko")]
    assert names61[0] == "insmod mydebug"
    assert names61[-3:] == ["rmmod mydebug", "/sys/kernel/debug/mydebug is gone after rmmod", "load/unload x3"]
    for n in ("a: exists", "a: mode 644", "a: reads its initial value", "a: write 0, read it back",
              "a: write 255, read it back", "a: a garbage write is rejected", "b: mode 444",
              "subdir/c: replace (31 bytes), exact read-back", "subdir/c: a 32-byte write is rejected (ENOSPC)",
              "subdir/c: an empty write changes nothing", "subdir: directory exists"):
        assert n in names61 and n in names612, n
    assert "b: a write is rejected even for root (read-only)" in names61
    assert "b: write rejection not checked" in names612 and "b: a write is rejected even for root (read-only)" not in names612


def test_blob_with_a_write_mode_depends_on_the_kernel():
    spec = parse_spec('[module]\nname = "blobby"\n[[entry]]\npath = "b"\ntype = "blob"\nmode = "0644"\nvalue = "hi\\n"\n')
    b = spec.entries[0]
    assert checks.shown_mode(b, (6, 1, 0)) == "444" and not checks.writable(b, (6, 1, 0))
    assert checks.shown_mode(b, (6, 12, 0)) == "644" and checks.writable(b, (6, 12, 0))
    n61 = [c.name for c in checks.plan(spec, (6, 1, 0), "/x.ko")]
    n612 = [c.name for c in checks.plan(spec, (6, 12, 0), "/x.ko")]
    assert "b: a write is rejected even for root (before 6.8 a blob is read-only)" in n61
    assert "b: writing its own bytes back works" in n612


def test_initial_values_in_the_kernels_format():
    spec = example()
    bodies = {c.name: c.body for c in checks.plan(spec, (6, 12, 0), "/x.ko")}
    reads = {name.split(":")[0]: body for name, body in bodies.items() if name.endswith("reads its initial value")}
    by_type = {e.type.name: e for e in spec.entries}
    for tname, e in by_type.items():
        if e.path in reads:
            want = checks._reads(e, (6, 12))
            assert checks.printf_format(want) in reads[e.path]
    if "x8" in by_type:
        assert checks._reads(by_type["x8"], (6, 12)) == b"0x%02x\n" % int(by_type["x8"].value or 0)
    if "bool" in by_type:
        assert checks._reads(by_type["bool"], (6, 12)) in (b"Y\n", b"N\n")


def test_u32_array_reads_padded_with_zeros():
    spec = parse_spec('[module]\nname = "arr"\n[[entry]]\npath = "v"\ntype = "u32_array"\nvalue = [1, 2, 3]\nlength = 4\n')
    assert checks._reads(spec.entries[0], (6, 1)) == b"1 2 3 0\n"


@pytest.mark.parametrize("version", [(6, 1, 0), (6, 12, 0)])
def test_generated_scripts_are_valid_ash(version, tmp_path):
    require(BUSYBOX.is_file(), "static busybox")
    for spec in (classic(), example()):
        text = checks.script(spec, version, "/lib/modules/m.ko", ("/checks/user/mine.sh",))
        path = tmp_path / "run.sh"
        path.write_text(text)
        proc = subprocess.run([str(BUSYBOX), "sh", "-n", str(path)], capture_output=True, text=True, timeout=10)
        assert proc.returncode == 0, proc.stderr
        assert "echo '1..%d' >&3" % len(checks.plan(spec, version, "/lib/modules/m.ko", ("/checks/user/mine.sh",))) in text
        assert "run_user_check" in text


def test_same_passes_on_the_right_bytes_and_fails_on_wrong_ones(tmp_path):
    (tmp_path / "f").write_bytes(b"0x05\n")
    assert ash("same f '0x05\\n'", tmp_path)[0] == 0
    rc, fd3, _ = ash("same f '0x06\\n'", tmp_path)
    assert rc != 0 and "# read:" in fd3 and "# expected:" in fd3
    assert ash("same f '0x05'", tmp_path)[0] != 0  # a missing newline is a difference
    assert ash("same missing '0x05\\n'", tmp_path)[0] != 0


def test_put_fails_and_mode_is(tmp_path):
    (tmp_path / "f").write_text("")
    (tmp_path / "f").chmod(0o640)
    assert ash("put_ok f 'abc' && same f 'abc'", tmp_path)[0] == 0
    rc, fd3, _ = ash("put_fails f 'abc'", tmp_path)  # the write works: put_fails must fail
    assert rc != 0 and "succeeded; it should fail" in fd3
    assert ash("put_fails nodir/f 'abc' 'No such file'", tmp_path)[0] == 0
    assert ash("put_fails nodir/f 'abc' 'No space left'", tmp_path)[0] != 0
    assert ash("mode_is f 640", tmp_path)[0] == 0
    assert ash("mode_is f 644", tmp_path)[0] != 0


def test_user_helpers_speak_ktap(tmp_path):
    rc, fd3, _ = ash("ok 'first'; not_ok 'second' 'why'; skip 'third' 'no reason'", tmp_path)
    assert fd3.splitlines() == ["ok 1 first", "# why", "not ok 2 second", "ok 3 third # SKIP no reason"]


def test_user_checks_are_the_executable_scripts(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    for name, mode in (("b.sh", 0o755), ("a.sh", 0o755), ("notes.sh", 0o644), ("c.txt", 0o755)):
        (tests / name).write_text("ok x\n")
        (tests / name).chmod(mode)
    assert [p.name for p in checks.user_checks(tmp_path)] == ["a.sh", "b.sh"]
    assert checks.user_checks(tmp_path / "nope") == []
