"""Runtime readiness checks (dbgscaffold.kconfig.runtime).

Three layers: the pure parsers on samples in the kernel's own formats; every
status of every check on a fake root built in tmp_path (`FakeRoot`); and one
run on this machine's real root.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import require_tools
from dbgscaffold.kconfig import runtime as rt
from dbgscaffold.kconfig.runtime import (
    PROFILES,
    STATUSES,
    Mount,
    RuntimeCheck,
    check_btf,
    check_debugfs_cmdline,
    check_debugfs_mount,
    check_kernel_debuginfo,
    check_kernel_headers,
    check_kptr_restrict,
    check_lockdown,
    check_module_signatures,
    check_perf_event_paranoid,
    check_runtime,
    check_tracefs_mount,
    check_unprivileged_bpf,
    elf_section_names,
    has_dwarf,
    is_btf,
    lockdown_effects,
    mount_points,
    param_value,
    parse_bool_param,
    parse_filesystems,
    parse_kallsyms_hidden,
    parse_kernel_params,
    parse_lockdown,
    parse_makefile_version,
    parse_mountinfo,
    parse_mounts,
    parse_sysctl_int,
    parse_utsrelease,
)

RELEASE = "6.1.0-56-amd64"

# ---------------------------------------------------------------------------
# Samples in the kernel's formats (taken from Debian 12 machines and this one)

PROC_MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0
securityfs /sys/kernel/security securityfs rw,nosuid,nodev,noexec,relatime 0 0
debugfs /sys/kernel/debug debugfs rw,nosuid,nodev,noexec,relatime 0 0
tracefs /sys/kernel/tracing tracefs rw,nosuid,nodev,noexec,relatime 0 0
/dev/sdb1 /mnt/my\\040disk ext4 rw,relatime 0 0
"""

MOUNTINFO = """\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
25 22 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - securityfs securityfs rw
36 22 0:7 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:15 - debugfs debugfs rw
37 22 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:16 - tracefs tracefs rw
40 28 0:35 / /mnt/a\\040b rw,relatime master:1 propagate_from:2 - tmpfs none rw,size=1024k
"""

FILESYSTEMS = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdebugfs\nnodev\ttracefs\nnodev\tsecurityfs\n\text4\n\tbtrfs\n"

DEBIAN_CMDLINE = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-56-amd64 root=UUID=0b3c6f4e-6a71-4c1a-9c8e-3a8f8e0c2d11 ro quiet\n"
FIRECRACKER_CMDLINE = (
    "mitigations=auto,no_guest_host console=ttyS0 quiet reboot=k panic=1 nomodule random.trust_cpu=1 "
    "rdinit=/process_api -- --firecracker-init --addr 0.0.0.0:2024 debugfs=off\n"
)

MAKEFILE_HEAD = """\
# SPDX-License-Identifier: GPL-2.0
VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 57
EXTRAVERSION =
NAME = Baby Opossum Posse
"""


# ---------------------------------------------------------------------------
# Parsers


def test_parse_mounts_reads_type_and_mount_point_and_unescapes_spaces():
    mounts = parse_mounts(PROC_MOUNTS)
    assert len(mounts) == 7
    assert mounts[4] == Mount("debugfs", "/sys/kernel/debug", "debugfs", ("rw", "nosuid", "nodev", "noexec", "relatime"))
    assert mount_points(mounts, "tracefs") == ["/sys/kernel/tracing"]
    assert mount_points(mounts, "ext4") == ["/", "/mnt/my disk"]


def test_parse_mountinfo_skips_optional_fields_and_merges_super_options():
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.fstype for m in mounts] == ["sysfs", "proc", "ext4", "securityfs", "debugfs", "tracefs", "tmpfs"]
    assert mount_points(mounts, "debugfs") == ["/sys/kernel/debug"]
    last = mounts[-1]
    assert (last.mount_point, last.source) == ("/mnt/a b", "none")
    assert last.options == ("rw", "relatime", "size=1024k")


def test_parse_mountinfo_of_this_machine_agrees_with_proc_mounts():
    info = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    plain = parse_mounts(Path("/proc/mounts").read_text())
    assert info, "mountinfo parsed to nothing"
    assert sorted((m.mount_point, m.fstype) for m in info) == sorted((m.mount_point, m.fstype) for m in plain)


def test_mount_points_lists_each_place_once_in_order():
    twice = parse_mounts("debugfs /d debugfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\ndebugfs /d debugfs rw 0 0\n")
    assert mount_points(twice, "debugfs") == ["/d", "/sys/kernel/debug"]


def test_parse_filesystems_takes_the_last_column():
    assert parse_filesystems(FILESYSTEMS) == {"sysfs", "tmpfs", "proc", "debugfs", "tracefs", "securityfs", "ext4", "btrfs"}


def test_parse_kernel_params_stops_at_double_dash():
    params = parse_kernel_params(FIRECRACKER_CMDLINE)
    assert params[0] == ("mitigations", "auto,no_guest_host")
    assert ("nomodule", None) in params
    assert param_value(params, "rdinit") == (True, "/process_api")
    assert param_value(params, "debugfs") == (False, None)  # after --: init's, not the kernel's


def test_parse_kernel_params_quotes_last_wins_and_dashes():
    params = parse_kernel_params('ro dyndbg="file foo.c +p" debugfs=off debugfs=no-mount module.sig-enforce=1\n')
    assert param_value(params, "dyndbg") == (True, "file foo.c +p")
    assert param_value(params, "debugfs") == (True, "no-mount")
    assert param_value(params, "module.sig_enforce") == (True, "1")
    assert param_value(parse_kernel_params(DEBIAN_CMDLINE), "ro") == (True, None)


@pytest.mark.parametrize(
    "text, mode",
    [
        ("[none] integrity confidentiality\n", "none"),
        ("none [integrity] confidentiality\n", "integrity"),
        ("none integrity [confidentiality]\n", "confidentiality"),
    ],
)
def test_parse_lockdown_takes_the_bracketed_mode(text, mode):
    assert parse_lockdown(text) == mode


def test_parse_lockdown_rejects_text_without_brackets():
    with pytest.raises(ValueError):
        parse_lockdown("none integrity confidentiality\n")


def test_parse_sysctl_int_and_bool_param():
    assert parse_sysctl_int("2\n") == 2
    assert parse_sysctl_int("-1\n") == -1
    for bad in ("", "\n", "abc\n"):
        with pytest.raises(ValueError):
            parse_sysctl_int(bad)
    assert parse_bool_param("Y\n") is True
    assert parse_bool_param("N\n") is False
    with pytest.raises(ValueError):
        parse_bool_param("maybe\n")


def test_parse_utsrelease_and_makefile_version():
    assert parse_utsrelease('#define UTS_RELEASE "6.1.0-56-amd64"\n') == "6.1.0-56-amd64"
    assert parse_utsrelease("/* nothing */\n") is None
    assert parse_makefile_version(MAKEFILE_HEAD) == "6.12.57"
    # Debian's per-flavour build Makefile only includes the common one
    assert parse_makefile_version("include /usr/src/linux-headers-6.1.0-56-common/Makefile\n") is None


def test_parse_kallsyms_hidden():
    assert parse_kallsyms_hidden("0000000000000000 T _text\n0000000000000000 T _stext\n") is True
    assert parse_kallsyms_hidden("ffffffff81000000 T _text\nffffffff81000000 T _stext\n") is False
    # a 4 KiB sample cut mid-line: a cut address has no fields after it, so it is not counted
    assert parse_kallsyms_hidden("0000000000000000 T _text\n00000000") is True
    assert parse_kallsyms_hidden("ffffffff81000000 T _text\nffffffff81000000 T _st") is False
    assert parse_kallsyms_hidden("") is None


def test_is_btf_checks_the_magic():
    assert is_btf(b"\x9f\xeb\x01\x00\x18\x00\x00\x00")
    assert not is_btf(b"\x7fELF")
    assert not is_btf(b"")


@pytest.fixture(scope="module")
def elf_objects(tmp_path_factory) -> dict[str, Path]:
    """A C object compiled with and without -g: real ELF files, one with DWARF."""
    require_tools("gcc")
    work = tmp_path_factory.mktemp("elf")
    (work / "t.c").write_text("int answer(void) { return 42; }\n")
    out = {}
    for name, flags in (("dwarf", ["-g"]), ("plain", [])):
        obj = work / f"{name}.o"
        subprocess.run(["gcc", "-c", *flags, "-o", str(obj), str(work / "t.c")], check=True)
        out[name] = obj
    return out


def _names(path: Path) -> list[str]:
    data = path.read_bytes()
    return elf_section_names(lambda offset, size: data[offset : offset + size])


def test_elf_section_names_finds_dwarf_only_in_the_g_object(elf_objects):
    assert ".debug_info" in _names(elf_objects["dwarf"])
    assert ".debug_info" not in _names(elf_objects["plain"])
    assert ".text" in _names(elf_objects["plain"])


def test_has_dwarf_wants_debug_info_not_just_line_tables():
    assert has_dwarf([".text", ".debug_info", ".debug_line"])
    assert has_dwarf([".text", ".zdebug_info"])  # old-style compressed sections
    assert not has_dwarf([".text", ".debug_line", ".debug_str"])  # -g1 style: no types or variables


def test_elf_section_names_agree_with_readelf(elf_objects):
    require_tools("readelf")
    out = subprocess.run(["readelf", "-S", "-W", str(elf_objects["dwarf"])], capture_output=True, text=True, check=True)
    listed = {line.split("]", 1)[1].split()[0] for line in out.stdout.splitlines() if "] ." in line}
    assert listed and listed == {n for n in _names(elf_objects["dwarf"]) if n}


def test_elf_section_names_reads_extended_counts_from_section_zero(elf_objects):
    # how ELF spells more than 0xff00 sections: e_shnum 0, e_shstrndx SHN_XINDEX, real values in section 0
    data = bytearray(elf_objects["dwarf"].read_bytes())
    assert data[4:6] == b"\x02\x01", "expects a 64-bit little-endian object"
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shnum, shstrndx = struct.unpack_from("<H", data, 0x3C)[0], struct.unpack_from("<H", data, 0x3E)[0]
    struct.pack_into("<HH", data, 0x3C, 0, 0xFFFF)
    struct.pack_into("<Q", data, shoff + 0x20, shnum)  # section 0's sh_size
    struct.pack_into("<I", data, shoff + 0x28, shstrndx)  # section 0's sh_link
    names = elf_section_names(lambda o, n: bytes(data[o : o + n]))
    assert names == _names(elf_objects["dwarf"]) and ".debug_info" in names


def test_elf_section_names_rejects_non_elf_and_truncated(elf_objects):
    with pytest.raises(ValueError):
        elf_section_names(lambda o, n: b"#!/bin/sh\n"[o : o + n])
    head = elf_objects["dwarf"].read_bytes()[:100]  # header kept, section table cut off
    with pytest.raises(ValueError):
        elf_section_names(lambda o, n: head[o : o + n])


# ---------------------------------------------------------------------------
# A fake root


class FakeRoot:
    """A directory laid out like / with just the files a test wants."""

    def __init__(self, path: Path):
        self.path = path
        for d in ("proc/self", "proc/sys/kernel", "sys/kernel/debug", "sys/kernel/tracing", "sys/kernel/security"):
            (path / d).mkdir(parents=True, exist_ok=True)

    def write(self, name: str, content: str | bytes) -> Path:
        target = self.path / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def mounts(self, *mounted: tuple[str, str]) -> None:
        """(fstype, mount point) pairs, written as mountinfo."""
        lines = ["28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"]
        for i, (fs, point) in enumerate(mounted):
            lines.append(f"{30 + i} 28 0:{i} / {point} rw,relatime shared:{i} - {fs} {fs} rw")
        self.write("/proc/self/mountinfo", "\n".join(lines) + "\n")

    def filesystems(self, *names: str) -> None:
        self.write("/proc/filesystems", "".join(f"nodev\t{n}\n" for n in names))

    def sysctl(self, name: str, value: str) -> None:
        self.write(f"/proc/sys/kernel/{name}", value + "\n")


@pytest.fixture
def fake(tmp_path) -> FakeRoot:
    return FakeRoot(tmp_path)


def deny(monkeypatch, *paths: Path) -> None:
    """Make opening these paths fail as it does for non-root (tests run as root here)."""
    denied = {str(p) for p in paths}
    real_open = Path.open

    def fake_open(self, *args, **kwargs):
        if str(self) in denied:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", fake_open)


# ---------------------------------------------------------------------------
# debugfs and tracefs mounts


def test_debugfs_mounted_is_ok_and_says_where(fake):
    fake.mounts(("debugfs", "/sys/kernel/debug"))
    c = check_debugfs_mount(fake.path)
    assert (c.status, c.found) == ("ok", "mounted at /sys/kernel/debug")


def test_debugfs_mounted_elsewhere_is_a_warning(fake):
    fake.mounts(("debugfs", "/mnt/dbg"))
    c = check_debugfs_mount(fake.path)
    assert c.status == "warning" and "/mnt/dbg" in c.found
    assert "mount -t debugfs none /sys/kernel/debug" in c.fix


def test_debugfs_not_mounted_is_a_problem_with_the_mount_command(fake):
    fake.mounts(("sysfs", "/sys"))
    fake.filesystems("sysfs", "debugfs")
    c = check_debugfs_mount(fake.path)
    assert c.status == "problem"
    assert c.fix.startswith("mount -t debugfs none /sys/kernel/debug")


def test_debugfs_not_registered_points_at_boot_and_config(fake):
    fake.mounts(("sysfs", "/sys"))
    fake.filesystems("sysfs", "tracefs")
    c = check_debugfs_mount(fake.path)
    assert c.status == "problem" and "debugfs=off" in c.found
    assert "debugfs=on" in c.fix and "CONFIG_DEBUG_FS_ALLOW_ALL" in c.fix


def test_mounts_unreadable_is_unknown(fake, monkeypatch):
    fake.write("/proc/mounts", PROC_MOUNTS)
    deny(monkeypatch, fake.path / "proc/mounts")  # and no mountinfo at all
    for check in (check_debugfs_mount, check_tracefs_mount):
        c = check(fake.path)
        assert c.status == "unknown" and "permission denied" in c.found


def test_plain_proc_mounts_is_used_without_mountinfo(fake):
    fake.write("/proc/mounts", PROC_MOUNTS)
    assert check_debugfs_mount(fake.path).status == "ok"
    assert check_tracefs_mount(fake.path).found == "mounted at /sys/kernel/tracing"


@pytest.mark.parametrize("point", ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"])
def test_tracefs_mounted_is_ok(fake, point):
    fake.mounts(("debugfs", "/sys/kernel/debug"), ("tracefs", point))
    c = check_tracefs_mount(fake.path)
    assert (c.status, c.found) == ("ok", f"mounted at {point}")


def test_tracefs_unmounted_under_debugfs_is_a_warning_for_the_automount(fake):
    fake.mounts(("debugfs", "/sys/kernel/debug"))
    c = check_tracefs_mount(fake.path)
    assert c.status == "warning" and "/sys/kernel/debug/tracing" in c.found
    assert "mount -t tracefs nodev /sys/kernel/tracing" in c.fix


def test_tracefs_unmounted_is_a_problem(fake):
    fake.mounts(("sysfs", "/sys"))
    fake.filesystems("sysfs", "tracefs")
    c = check_tracefs_mount(fake.path)
    assert c.status == "problem" and c.fix.startswith("mount -t tracefs nodev /sys/kernel/tracing")


def test_tracefs_not_registered_means_no_tracing_in_the_kernel(fake):
    fake.mounts(("sysfs", "/sys"))
    fake.filesystems("sysfs")
    c = check_tracefs_mount(fake.path)
    assert c.status == "problem" and "CONFIG_TRACING" in c.found


# ---------------------------------------------------------------------------
# debugfs= on the command line


@pytest.mark.parametrize(
    "cmdline, status, says",
    [
        (DEBIAN_CMDLINE, "ok", "build-time default"),
        ("ro debugfs=on quiet\n", "ok", "debugfs=on"),
        ("ro debugfs=off quiet\n", "problem", "-EPERM"),
        ("ro debugfs=no-mount quiet\n", "problem", "nothing to mount"),
        ("ro debugfs=yes\n", "warning", "ignored"),
        ("ro debugfs=off debugfs=on\n", "ok", "debugfs=on"),
        (FIRECRACKER_CMDLINE, "ok", "build-time default"),
    ],
)
def test_debugfs_cmdline(fake, cmdline, status, says):
    fake.write("/proc/cmdline", cmdline)
    c = check_debugfs_cmdline(fake.path)
    assert c.status == status and says in c.found
    if status != "ok":
        assert "debugfs=on" in c.fix


def test_debugfs_cmdline_unreadable_is_unknown(fake, monkeypatch):
    deny(monkeypatch, fake.write("/proc/cmdline", "ro\n"))
    c = check_debugfs_cmdline(fake.path)
    assert c.status == "unknown" and "cannot read /proc/cmdline: permission denied" in c.found


# ---------------------------------------------------------------------------
# lockdown


def _lockdown(fake: FakeRoot, mode: str) -> None:
    fake.mounts(("securityfs", "/sys/kernel/security"))
    levels = ["none", "integrity", "confidentiality"]
    fake.write("/sys/kernel/security/lockdown", " ".join(f"[{m}]" if m == mode else m for m in levels) + "\n")


def test_lockdown_none_is_ok(fake):
    _lockdown(fake, "none")
    c = check_lockdown(fake.path)
    assert c.status == "ok" and c.found.startswith("none")


def test_lockdown_integrity_blocks_modules_and_writable_debugfs_files(fake):
    _lockdown(fake, "integrity")
    c = check_lockdown(fake.path)
    assert c.status == "problem"
    assert "module: unsigned modules are refused" in c.found and "debugfs: " in c.found
    assert "ftrace" not in c.found
    assert "mokutil" in c.fix


def test_lockdown_status_follows_the_requested_profiles(fake):
    _lockdown(fake, "integrity")
    assert check_lockdown(fake.path, {"ftrace"}).status == "ok"
    assert check_lockdown(fake.path, {"kprobes"}).status == "warning"
    assert check_lockdown(fake.path, {"ftrace", "module"}).status == "problem"
    _lockdown(fake, "confidentiality")
    c = check_lockdown(fake.path, {"ftrace"})
    assert c.status == "problem" and "LOCKDOWN_TRACEFS" in c.found


def test_lockdown_effects_table():
    assert lockdown_effects("none") == {}
    assert set(lockdown_effects("integrity")) == {"module", "systemtap", "debugfs", "debug", "kprobes", "bpf"}
    assert set(lockdown_effects("confidentiality")) == set(PROFILES)
    assert lockdown_effects("confidentiality", {"bpf"})["bpf"][0] == "problem"


def test_no_lockdown_file_on_mounted_securityfs_means_no_lockdown_lsm(fake):
    fake.mounts(("securityfs", "/sys/kernel/security"))
    c = check_lockdown(fake.path)
    assert c.status == "ok" and "no lockdown LSM" in c.found


def test_lockdown_without_securityfs_is_unknown_unless_the_cmdline_says(fake):
    fake.mounts(("sysfs", "/sys"))
    fake.write("/proc/cmdline", DEBIAN_CMDLINE)
    c = check_lockdown(fake.path)
    assert c.status == "unknown" and "securityfs is not mounted" in c.found
    assert c.fix.startswith("mount -t securityfs securityfs /sys/kernel/security")
    fake.write("/proc/cmdline", "ro lockdown=integrity\n")
    c = check_lockdown(fake.path)
    assert c.status == "problem" and "lockdown=integrity on the kernel command line" in c.found


def test_lockdown_unreadable_or_odd_content(fake, monkeypatch):
    _lockdown(fake, "none")
    fake.write("/sys/kernel/security/lockdown", "[paranoid] none\n")
    assert check_lockdown(fake.path).status == "warning"
    fake.write("/sys/kernel/security/lockdown", "garbage\n")
    assert check_lockdown(fake.path).status == "unknown"
    deny(monkeypatch, fake.path / "sys/kernel/security/lockdown")
    c = check_lockdown(fake.path)
    assert c.status == "unknown" and "permission denied" in c.found


# ---------------------------------------------------------------------------
# module loading and signatures


def _modules(fake: FakeRoot, sig_enforce: str | None, lockdown: str = "none") -> None:
    fake.write("/proc/modules", "ext4 1011712 1 - Live 0x0000000000000000\n")
    if sig_enforce is not None:
        fake.write(rt.SIG_ENFORCE_FILE, sig_enforce + "\n")
    _lockdown(fake, lockdown)


@pytest.mark.parametrize(
    "sig_enforce, lockdown, status, says",
    [
        ("N", "none", "ok", "unsigned modules load"),
        (None, "none", "ok", "CONFIG_MODULE_SIG=n"),
        ("Y", "none", "problem", "EKEYREJECTED"),
        ("N", "integrity", "problem", "lockdown=integrity refuses unsigned modules"),
    ],
)
def test_module_signatures(fake, sig_enforce, lockdown, status, says):
    _modules(fake, sig_enforce, lockdown)
    c = check_module_signatures(fake.path)
    assert c.status == status and says in c.found
    assert "scripts/sign-file" in c.fix


def test_no_proc_modules_means_no_module_support(fake):
    c = check_module_signatures(fake.path)  # /proc/self exists, /proc/modules does not
    assert c.status == "problem" and "CONFIG_MODULES=n" in c.found


def test_module_signatures_unknown_without_proc_or_with_odd_sig_enforce(tmp_path, fake):
    assert check_module_signatures(tmp_path / "empty").status == "unknown"
    _modules(fake, "perhaps")
    assert check_module_signatures(fake.path).status == "unknown"


# ---------------------------------------------------------------------------
# sysctls


@pytest.mark.parametrize("value, status", [("0", "ok"), ("1", "ok"), ("2", "problem")])
def test_kptr_restrict(fake, value, status):
    fake.sysctl("kptr_restrict", value)
    fake.write("/proc/kallsyms", "ffffffff81000000 T _text\n")
    c = check_kptr_restrict(fake.path)
    assert c.status == status and c.found.startswith(value + ":")
    assert "kernel.kptr_restrict=1" in c.fix


def test_kptr_restrict_warns_when_this_process_sees_zeros(fake):
    fake.sysctl("kptr_restrict", "1")
    fake.write("/proc/kallsyms", "0000000000000000 T _text\n0000000000000000 T _stext\n")
    c = check_kptr_restrict(fake.path)
    assert c.status == "warning" and "sees zeros" in c.found


@pytest.mark.parametrize(
    "value, status, says",
    [
        ("-1", "ok", "all users"),
        ("-3", "ok", "like -1"),
        ("2", "ok", "upstream default"),
        ("3", "warning", "CAP_SYS_ADMIN"),
        ("4", "warning", "Ubuntu"),
    ],
)
def test_perf_event_paranoid(fake, value, status, says):
    fake.sysctl("perf_event_paranoid", value)
    c = check_perf_event_paranoid(fake.path)
    assert c.status == status and says in c.found


@pytest.mark.parametrize("value", ["0", "1", "2"])
def test_unprivileged_bpf_disabled_never_blocks_root(fake, value):
    fake.sysctl("unprivileged_bpf_disabled", value)
    c = check_unprivileged_bpf(fake.path)
    assert c.status == "ok" and c.found.startswith(value + ":")


@pytest.mark.parametrize(
    "check, config",
    [
        (check_perf_event_paranoid, "CONFIG_PERF_EVENTS"),
        (check_unprivileged_bpf, "CONFIG_BPF_SYSCALL"),
    ],
)
def test_missing_sysctl_means_the_feature_is_not_built(fake, check, config):
    c = check(fake.path)  # /proc/sys/kernel exists but not the file
    assert c.status == "problem" and config in c.found and config in c.fix


@pytest.mark.parametrize("check", [check_kptr_restrict, check_perf_event_paranoid, check_unprivileged_bpf])
def test_sysctl_unknown_without_proc_sys_or_when_unreadable(tmp_path, fake, monkeypatch, check):
    assert check(tmp_path / "empty").status == "unknown"
    names = ("kptr_restrict", "perf_event_paranoid", "unprivileged_bpf_disabled")
    for name in names:
        fake.sysctl(name, "1")
    deny(monkeypatch, *(fake.path / "proc/sys/kernel" / name for name in names))
    c = check(fake.path)
    assert c.status == "unknown" and "permission denied" in c.found


def test_sysctl_with_garbage_is_unknown(fake):
    fake.sysctl("kptr_restrict", "lots")
    assert check_kptr_restrict(fake.path).status == "unknown"


# ---------------------------------------------------------------------------
# headers


def _headers(fake: FakeRoot, release: str, *, uts: str | None = None, makefile: str = MAKEFILE_HEAD) -> Path:
    build = f"/lib/modules/{release}/build"
    fake.write(f"{build}/Makefile", makefile)
    if uts is not None:
        fake.write(f"{build}/include/generated/utsrelease.h", f'#define UTS_RELEASE "{uts}"\n')
    return fake.path / build.lstrip("/")


def test_headers_matching_the_running_kernel_are_ok(fake):
    _headers(fake, RELEASE, uts=RELEASE)
    c = check_kernel_headers(fake.path, RELEASE)
    assert c.status == "ok" and "utsrelease.h" in c.found


def test_headers_release_from_kernel_release_when_no_utsrelease(fake):
    build = _headers(fake, RELEASE)
    (build / "include/config").mkdir(parents=True)
    (build / "include/config/kernel.release").write_text(RELEASE + "\n")
    assert check_kernel_headers(fake.path, RELEASE).status == "ok"


def test_utsrelease_wins_over_debians_upstream_kernel_release(fake):
    build = _headers(fake, RELEASE, uts=RELEASE)
    (build / "include/config").mkdir(parents=True)
    (build / "include/config/kernel.release").write_text("6.1.192\n")  # as Debian's 6.1 headers ship it
    assert check_kernel_headers(fake.path, RELEASE).status == "ok"


def test_headers_for_another_release_are_a_problem(fake):
    _headers(fake, RELEASE, uts="6.1.0-55-amd64")
    c = check_kernel_headers(fake.path, RELEASE)
    assert c.status == "problem" and "6.1.0-55-amd64" in c.found and "vermagic" in c.found


def test_missing_headers_name_the_package_and_what_is_installed(fake):
    _headers(fake, "6.12.117+deb12-amd64", uts="6.12.117+deb12-amd64")
    c = check_kernel_headers(fake.path, RELEASE)
    assert c.status == "problem"
    assert "installed only for 6.12.117+deb12-amd64" in c.found
    assert f"apt-get install linux-headers-{RELEASE}" in c.fix
    assert check_kernel_headers(fake.path, RELEASE, profiles={"bpf"}).status == "warning"


def test_dangling_build_link_is_a_problem(fake):
    (fake.path / f"lib/modules/{RELEASE}").mkdir(parents=True)
    (fake.path / f"lib/modules/{RELEASE}/build").symlink_to(fake.path / "usr/src/gone")
    c = check_kernel_headers(fake.path, RELEASE)
    assert c.status == "problem" and "does not exist" in c.found


@pytest.mark.parametrize("release, status", [("6.12.57", "warning"), ("6.1.0-56-amd64", "problem")])
def test_unprepared_headers_compare_the_makefile_series(fake, release, status):
    _headers(fake, release)  # Makefile says 6.12.57, no utsrelease.h
    c = check_kernel_headers(fake.path, release)
    assert c.status == status and "6.12.57" in c.found


def test_headers_without_any_version_are_a_warning(fake):
    _headers(fake, RELEASE, makefile="include /usr/src/linux-headers-6.1.0-56-common/Makefile\n")
    c = check_kernel_headers(fake.path, RELEASE)
    assert c.status == "warning" and "modules_prepare" in c.found


def test_headers_unreadable_makefile_is_unknown(fake, monkeypatch):
    deny(monkeypatch, _headers(fake, RELEASE) / "Makefile")
    c = check_kernel_headers(fake.path, RELEASE)
    assert c.status == "unknown" and "permission denied" in c.found


# ---------------------------------------------------------------------------
# debug info


@pytest.mark.parametrize("index", range(4))
def test_vmlinux_with_dwarf_in_any_standard_place_is_ok(fake, elf_objects, index):
    where = rt.debuginfo_candidates(RELEASE)[index]
    shutil.copy(elf_objects["dwarf"], fake.write(where, b""))
    c = check_kernel_debuginfo(fake.path, RELEASE)
    assert (c.status, c.found) == ("ok", f"{where} has DWARF (.debug_info)")


def test_stripped_or_compressed_vmlinux_is_a_problem(fake, elf_objects):
    shutil.copy(elf_objects["plain"], fake.write(f"/boot/vmlinux-{RELEASE}", b""))
    fake.write(f"/usr/lib/debug/boot/vmlinux-{RELEASE}", b"\x1f\x8b\x08\x00 gzip")
    c = check_kernel_debuginfo(fake.path, RELEASE)
    assert c.status == "problem" and "stripped" in c.found and "not an ELF file" in c.found


def test_no_vmlinux_is_a_problem_naming_the_dbg_package(fake):
    c = check_kernel_debuginfo(fake.path, RELEASE)
    assert c.status == "problem" and f"/usr/lib/debug/boot/vmlinux-{RELEASE}" in c.found
    assert f"apt-get install linux-image-{RELEASE}-dbg" in c.fix and "dbgsym" in c.fix


def test_unreadable_vmlinux_is_unknown(fake, monkeypatch):
    deny(monkeypatch, fake.write(f"/usr/lib/debug/boot/vmlinux-{RELEASE}", b"\x7fELF"))
    c = check_kernel_debuginfo(fake.path, RELEASE)
    assert c.status == "unknown" and "permission denied" in c.found


# ---------------------------------------------------------------------------
# BTF


def test_btf(fake, tmp_path, monkeypatch):
    assert check_btf(tmp_path / "empty").status == "unknown"
    c = check_btf(fake.path)
    assert c.status == "problem" and "CONFIG_DEBUG_INFO_BTF" in c.fix
    btf = fake.write(rt.BTF_FILE, b"\x9f\xeb\x01\x00\x18\x00\x00\x00")
    assert check_btf(fake.path).status == "ok"
    btf.write_bytes(b"junk")
    assert check_btf(fake.path).status == "warning"
    deny(monkeypatch, btf)
    assert check_btf(fake.path).status == "unknown"


# ---------------------------------------------------------------------------
# check_runtime and RuntimeCheck


def test_check_runtime_keeps_only_the_checks_a_profile_needs(fake):
    keys = lambda profiles: [c.key for c in check_runtime(profiles, fake.path, RELEASE)]  # noqa: E731
    assert keys({"ftrace"}) == ["tracefs_mount", "lockdown"]
    assert keys({"module"}) == ["lockdown", "module_signatures", "kernel_headers"]
    assert keys({"systemtap"}) == [
        "debugfs_mount", "debugfs_cmdline", "lockdown", "module_signatures", "kptr_restrict", "kernel_headers", "kernel_debuginfo",
    ]  # fmt: skip
    assert len(keys(None)) == len(rt.CHECKS) == 11
    assert keys(set()) == [] and keys({"no-such-profile"}) == []


def test_every_check_on_an_empty_root_is_unknown_or_problem_never_raises(tmp_path):
    for c in check_runtime(None, tmp_path, RELEASE):
        assert c.status in ("unknown", "problem"), c


def test_check_runtime_turns_a_crashing_check_into_unknown(fake, monkeypatch):
    def boom(root, release, profiles):
        raise OSError(5, "Input/output error")

    monkeypatch.setitem(rt.CHECKS, "btf", boom)
    (c,) = check_runtime({"bpf"}, fake.path, RELEASE)[-1:]
    assert (c.key, c.status) == ("btf", "unknown") and "Input/output error" in c.found


def test_runtime_check_validates_status_and_serialises():
    c = RuntimeCheck("k", "T", "ok", "f", "x", ("bpf",))
    assert c.to_dict() == {"key": "k", "title": "T", "status": "ok", "found": "f", "fix": "x", "needed_by": ["bpf"]}
    with pytest.raises(ValueError):
        RuntimeCheck("k", "T", "fine", "f", "x", ())


# ---------------------------------------------------------------------------
# This machine


def test_this_machine():
    release = os.uname().release
    results = check_runtime()
    assert [c.key for c in results] == list(rt.CHECKS)
    for c in results:
        assert c.status in STATUSES and c.title and c.fix and c.found, c
        assert c.needed_by and set(c.needed_by) <= set(PROFILES), c
    json.dumps([c.to_dict() for c in results])
    headers = next(c for c in results if c.key == "kernel_headers")
    if Path(f"/lib/modules/{release}/build/Makefile").is_file():
        assert headers.status in ("ok", "problem", "warning"), headers
    else:  # the case here: a 6.18 kernel, headers only for 6.1 and 6.12
        assert headers.status == "problem" and f"linux-headers-{release}" in headers.fix
