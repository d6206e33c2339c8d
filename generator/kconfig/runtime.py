"""Runtime readiness: can the running kernel serve the debugging tools now?

A kernel built with the right options can still refuse SystemTap, bcc/bpftrace,
ftrace, kprobes or an out-of-tree module because of how it was booted or what
is installed next to it.  Each check reads a few files under /proc, /sys,
/lib/modules and /usr/lib/debug (resolved under `root`, so tests can build a
fake one), hands the text to pure parsers and returns a RuntimeCheck.  A file
that cannot be read gives status "unknown" with the reason, never a traceback.

Kernel facts below were checked against linux-source-6.12 (Debian): see the
comments naming the kernel function each one comes from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import elf, kernels
from ..kernels import parse_utsrelease

OK = "ok"
WARNING = "warning"
PROBLEM = "problem"
UNKNOWN = "unknown"
STATUSES = (OK, WARNING, PROBLEM, UNKNOWN)
_SEVERITY = {OK: 0, WARNING: 1, PROBLEM: 2}

PROFILES = ("systemtap", "ftrace", "kprobes", "debugfs", "module", "bpf", "debug")

DEBUGFS_DIR = "/sys/kernel/debug"
TRACEFS_DIR = "/sys/kernel/tracing"
SECURITYFS_DIR = "/sys/kernel/security"
LOCKDOWN_FILE = SECURITYFS_DIR + "/lockdown"
SIG_ENFORCE_FILE = "/sys/module/module/parameters/sig_enforce"
BTF_FILE = "/sys/kernel/btf/vmlinux"
SYSCTL_DIR = "/proc/sys/kernel"

MOUNT_DEBUGFS = f"mount -t debugfs none {DEBUGFS_DIR}"
MOUNT_TRACEFS = f"mount -t tracefs nodev {TRACEFS_DIR}"
MOUNT_SECURITYFS = f"mount -t securityfs securityfs {SECURITYFS_DIR}"
EDIT_CMDLINE = "edit GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot"


@dataclass(frozen=True)
class RuntimeCheck:
    """One runtime condition.  `fix` says what to do when it is not ok (it is filled in either way)."""

    key: str
    title: str
    status: str  # ok | warning | problem | unknown
    found: str  # what was seen, and what it means for the tools
    fix: str
    needed_by: tuple[str, ...]  # the profiles this condition matters to

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"{self.key}: status {self.status!r} is not one of {STATUSES}")

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "found": self.found,
            "fix": self.fix,
            "needed_by": list(self.needed_by),
        }


@dataclass(frozen=True)
class _Meta:
    title: str
    needed_by: tuple[str, ...]


_META = {
    "debugfs_mount": _Meta("debugfs mounted", ("systemtap", "debugfs", "debug")),
    "tracefs_mount": _Meta("tracefs mounted", ("ftrace", "kprobes", "bpf")),
    "debugfs_cmdline": _Meta("debugfs= on the kernel command line", ("systemtap", "debugfs", "debug")),
    "lockdown": _Meta("Kernel lockdown", PROFILES),
    "module_signatures": _Meta("Module loading and signature enforcement", ("module", "systemtap")),
    "kptr_restrict": _Meta("Kernel addresses visible (kptr_restrict)", ("systemtap", "kprobes", "bpf")),
    "perf_event_paranoid": _Meta("perf_event_open allowed (perf_event_paranoid)", ("bpf",)),
    "unprivileged_bpf": _Meta("bpf() syscall (unprivileged_bpf_disabled)", ("bpf",)),
    "kernel_headers": _Meta("Headers for the running kernel", ("module", "debugfs", "systemtap", "bpf")),
    "kernel_debuginfo": _Meta("Debug info (DWARF vmlinux) for the running kernel", ("systemtap",)),
    "btf": _Meta("BTF for the running kernel (/sys/kernel/btf/vmlinux)", ("bpf",)),
}


def _result(key: str, status: str, found: str, fix: str) -> RuntimeCheck:
    meta = _META[key]
    return RuntimeCheck(key, meta.title, status, found, fix, meta.needed_by)


def _worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_SEVERITY.__getitem__, default=OK)


# --------------------------------------------------------------------------
# Pure parsers: text (or bytes) in, values out.  ValueError on malformed text.


@dataclass(frozen=True)
class Mount:
    source: str
    mount_point: str
    fstype: str
    options: tuple[str, ...]


def _unescape(field: str) -> str:
    # the kernel writes space, tab, newline and backslash in paths as \040 \011 \012 \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """/proc/mounts (or /etc/mtab): `source mount_point fstype options dump pass` per line."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        source, point, fstype, options = (_unescape(f) for f in fields[:4])
        mounts.append(Mount(source, point, fstype, tuple(options.split(","))))
    return mounts


def parse_mountinfo(text: str) -> list[Mount]:
    """/proc/self/mountinfo: `id parent maj:min root point options [optional...] - fstype source super_options`."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 3:
            continue
        point = _unescape(fields[4])
        fstype, source = fields[dash + 1], _unescape(fields[dash + 2])
        super_options = fields[dash + 3].split(",") if len(fields) > dash + 3 else []
        options = dict.fromkeys(fields[5].split(",") + super_options)  # per-mount first, then superblock
        mounts.append(Mount(source, point, fstype, tuple(options)))
    return mounts


def mount_points(mounts: Iterable[Mount], fstype: str) -> list[str]:
    """Where filesystems of `fstype` are mounted, in mount order, without repeats."""
    return list(dict.fromkeys(m.mount_point for m in mounts if m.fstype == fstype))


def parse_filesystems(text: str) -> frozenset[str]:
    """/proc/filesystems: the filesystem types registered with the kernel (`nodev\\tdebugfs`, `\\text4`)."""
    return frozenset(line.split()[-1] for line in text.splitlines() if line.split())


def parse_kernel_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """/proc/cmdline as (name, value) pairs, like the kernel's next_arg(): double quotes group
    spaces, `--` ends the kernel's part (the rest goes to init), value None for a bare flag."""
    params: list[tuple[str, str | None]] = []
    for token in re.findall(r'(?:[^\s"]|"[^"]*"?)+', text):
        if token == "--":
            break
        name, sep, value = token.partition("=")
        params.append((name.replace('"', ""), value.strip('"') if sep else None))
    return tuple(params)


def param_value(params: Iterable[tuple[str, str | None]], name: str) -> tuple[bool, str | None]:
    """(present, value) of the last `name` on the command line; the kernel lets the last one win
    and treats - and _ in names alike (parameq())."""
    wanted = name.replace("-", "_")
    found: tuple[bool, str | None] = (False, None)
    for key, value in params:
        if key.replace("-", "_") == wanted:
            found = (True, value)
    return found


def parse_lockdown(text: str) -> str:
    """/sys/kernel/security/lockdown, e.g. `[none] integrity confidentiality`: the bracketed mode
    (lockdown_read() brackets the active level)."""
    m = re.search(r"\[(\w+)\]", text)
    if not m:
        raise ValueError(f"no [mode] in {text.strip()!r}")
    return m[1]


def parse_sysctl_int(text: str) -> int:
    fields = text.split()
    if not fields:
        raise ValueError("empty")
    return int(fields[0])


def parse_bool_param(text: str) -> bool:
    """A bool module parameter as sysfs prints it: Y or N (param_get_bool())."""
    value = text.strip()
    if value in ("Y", "y", "1"):
        return True
    if value in ("N", "n", "0"):
        return False
    raise ValueError(f"not Y or N: {value!r}")


def parse_makefile_version(text: str) -> str | None:
    """`VERSION.PATCHLEVEL[.SUBLEVEL]` from a top-level kernel Makefile, or None."""
    version = kernels.parse_makefile_version(text)
    return ".".join(map(str, version)) if version else None


def parse_kallsyms_hidden(text: str) -> bool | None:
    """True when every address in a /proc/kallsyms sample is zero (the kernel hides them from
    this reader), False when they are real, None when the sample has no symbol lines."""
    addresses = []
    for line in text.splitlines():
        fields = line.split()  # a sample cut mid-line still has a whole address once it has 3 fields
        if len(fields) >= 3 and re.fullmatch(r"[0-9a-fA-F]+", fields[0]):
            addresses.append(int(fields[0], 16))
    return all(a == 0 for a in addresses) if addresses else None


def is_btf(data: bytes) -> bool:
    """BTF blobs start with the 16-bit magic 0xeB9F in the kernel's byte order."""
    return data[:2] in (b"\x9f\xeb", b"\xeb\x9f")


def elf_section_names(read: Callable[[int, int], bytes]) -> list[str]:
    """Section names of an ELF file, reading only its headers and name table through
    `read(offset, size)` (a 600 MB vmlinux is never loaded whole).  ValueError if not ELF."""
    return elf.section_names(read)


def has_dwarf(section_names: Iterable[str]) -> bool:
    return bool({".debug_info", ".zdebug_info"} & set(section_names))


# --------------------------------------------------------------------------
# Reading files under `root`.  The only place that touches the filesystem.


@dataclass(frozen=True)
class FileRead:
    """What reading one file gave: its bytes, or why there are none."""

    path: str  # as on the checked system, e.g. /proc/cmdline
    data: bytes | None = None
    missing: bool = False  # it does not exist: often meaningful (a feature is off)
    error: str = ""  # it exists but could not be read

    @property
    def ok(self) -> bool:
        return self.data is not None

    @property
    def text(self) -> str:
        return (self.data or b"").decode("utf-8", "replace")

    @property
    def why(self) -> str:
        return f"{self.path} does not exist" if self.missing else f"cannot read {self.path}: {self.error}"


def under(root: Path, path: str) -> Path:
    """`path` (absolute, on the checked system) inside `root`."""
    return root.joinpath(path.lstrip("/"))


def read_file(root: Path, path: str, limit: int = 1 << 20) -> FileRead:
    try:
        with under(root, path).open("rb") as f:
            return FileRead(path, f.read(limit))
    except (FileNotFoundError, NotADirectoryError):
        return FileRead(path, missing=True)
    except PermissionError:
        return FileRead(path, error="permission denied (run as root)")
    except OSError as exc:
        return FileRead(path, error=exc.strerror or str(exc))


def _exists(root: Path, path: str) -> bool:
    try:
        return under(root, path).exists()
    except OSError:
        return False


def read_mounts(root: Path = Path("/")) -> tuple[list[Mount] | None, str]:
    """This process's mounts (mountinfo, else /proc/mounts), or (None, why not)."""
    info = read_file(root, "/proc/self/mountinfo")
    if info.ok:
        return parse_mountinfo(info.text), ""
    plain = read_file(root, "/proc/mounts")
    if plain.ok:
        return parse_mounts(plain.text), ""
    return None, f"{info.why}; {plain.why}"


def read_filesystems(root: Path = Path("/")) -> frozenset[str] | None:
    f = read_file(root, "/proc/filesystems")
    return parse_filesystems(f.text) if f.ok else None


def read_kernel_params(root: Path = Path("/")) -> tuple[tuple[tuple[str, str | None], ...] | None, str]:
    f = read_file(root, "/proc/cmdline")
    return (parse_kernel_params(f.text), "") if f.ok else (None, f.why)


@dataclass(frozen=True)
class Sysctl:
    value: int | None
    why: str = ""  # why there is no value
    absent: bool = False  # no such file under an existing /proc/sys/kernel: the feature is not built


def read_sysctl(root: Path, name: str) -> Sysctl:
    f = read_file(root, f"{SYSCTL_DIR}/{name}", limit=4096)
    if f.ok:
        try:
            return Sysctl(parse_sysctl_int(f.text))
        except ValueError:
            return Sysctl(None, f"{f.path} holds {f.text.strip()!r}, not a number")
    return Sysctl(None, f.why, absent=f.missing and _exists(root, SYSCTL_DIR))


@dataclass(frozen=True)
class Lockdown:
    mode: str | None  # none | integrity | confidentiality; None when it cannot be told
    source: str  # where the mode came from, or why it is unknown
    securityfs_unmounted: bool = False


def read_lockdown(root: Path = Path("/")) -> Lockdown:
    """The lockdown mode.  "none" also when the kernel has no lockdown LSM: securityfs is
    mounted but holds no lockdown file."""
    f = read_file(root, LOCKDOWN_FILE, limit=4096)
    if f.ok:
        try:
            return Lockdown(parse_lockdown(f.text), LOCKDOWN_FILE)
        except ValueError as exc:
            return Lockdown(None, f"{LOCKDOWN_FILE}: unexpected content ({exc})")
    if not f.missing:
        return Lockdown(None, f.why)
    mounts, why = read_mounts(root)
    if mounts is None:
        return Lockdown(None, f"{f.why}, and the mounts cannot be read ({why})")
    if SECURITYFS_DIR in mount_points(mounts, "securityfs"):
        return Lockdown("none", f"no {LOCKDOWN_FILE}: the kernel has no lockdown LSM")
    # securityfs is not mounted, so the file cannot be there; lockdown= on the command line still tells
    params, _ = read_kernel_params(root)
    present, value = param_value(params or (), "lockdown")
    if present and value in ("integrity", "confidentiality"):
        return Lockdown(value, f"lockdown={value} on the kernel command line; {SECURITYFS_DIR} is not mounted")
    return Lockdown(None, f"securityfs is not mounted at {SECURITYFS_DIR}, so the lockdown mode cannot be read", True)


def read_elf_sections(path: Path) -> list[str]:
    with path.open("rb") as f:

        def read(offset: int, size: int) -> bytes:
            f.seek(offset)
            return f.read(size)

        return elf_section_names(read)


def _release(release: str | None) -> str:
    return release or os.uname().release


def _wanted(profiles: Iterable[str] | None) -> frozenset[str]:
    return frozenset(PROFILES) if profiles is None else frozenset(profiles)


# --------------------------------------------------------------------------
# The checks.


def check_debugfs_mount(root: Path = Path("/")) -> RuntimeCheck:
    fix = f"{MOUNT_DEBUGFS} (at boot: 'debugfs {DEBUGFS_DIR} debugfs defaults 0 0' in /etc/fstab)"
    mounts, why = read_mounts(root)
    if mounts is None:
        return _result("debugfs_mount", UNKNOWN, why, fix)
    points = mount_points(mounts, "debugfs")
    if DEBUGFS_DIR in points:
        return _result("debugfs_mount", OK, "mounted at " + ", ".join(points), fix)
    if points:
        found = f"mounted at {', '.join(points)} but not at {DEBUGFS_DIR}, where SystemTap and other tools look"
        return _result("debugfs_mount", WARNING, found, fix)
    registered = read_filesystems(root)
    if registered is not None and "debugfs" not in registered:
        found = (
            "not mounted, and the kernel has no debugfs filesystem to mount (/proc/filesystems lacks it): "
            "CONFIG_DEBUG_FS=n, debugfs=off or debugfs=no-mount at boot, "
            "or a config choosing CONFIG_DEBUG_FS_DISALLOW_MOUNT / CONFIG_DEBUG_FS_ALLOW_NONE"
        )
        fix = (
            "boot with debugfs=on (or rebuild with CONFIG_DEBUG_FS=y and CONFIG_DEBUG_FS_ALLOW_ALL=y), "
            f"then {MOUNT_DEBUGFS}"
        )
        return _result("debugfs_mount", PROBLEM, found, fix)
    return _result("debugfs_mount", PROBLEM, "not mounted (no debugfs among the mounts)", fix)


def check_tracefs_mount(root: Path = Path("/")) -> RuntimeCheck:
    fix = f"{MOUNT_TRACEFS} (at boot: 'tracefs {TRACEFS_DIR} tracefs defaults 0 0' in /etc/fstab)"
    mounts, why = read_mounts(root)
    if mounts is None:
        return _result("tracefs_mount", UNKNOWN, why, fix)
    points = mount_points(mounts, "tracefs")
    if points:
        return _result("tracefs_mount", OK, "mounted at " + ", ".join(points), fix)
    registered = read_filesystems(root)
    if registered is not None and "tracefs" not in registered:
        found = "not mounted, and the kernel has no tracefs (/proc/filesystems lacks it): built without CONFIG_TRACING"
        fix = f"rebuild with the ftrace profile's options, then {MOUNT_TRACEFS}"
        return _result("tracefs_mount", PROBLEM, found, fix)
    debugfs = mount_points(mounts, "debugfs")
    if debugfs:
        # tracer_init_tracefs() leaves an automount point at <debugfs>/tracing
        found = f"not mounted yet; the kernel mounts it at {debugfs[0]}/tracing on first access there"
        return _result("tracefs_mount", WARNING, found, fix)
    found = "not mounted (no tracefs among the mounts, and no debugfs to automount it under)"
    return _result("tracefs_mount", PROBLEM, found, fix)


_DEBUGFS_MODES = {
    "on": (OK, "debugfs=on: the filesystem and the in-kernel API are both enabled"),
    "no-mount": (
        PROBLEM,
        "debugfs=no-mount: modules can create debugfs files, but the filesystem is not registered, "
        "so there is nothing to mount and no tool can see them",
    ),
    "off": (
        PROBLEM,
        "debugfs=off: the filesystem is not registered and debugfs_create_*() return -EPERM, "
        "so a module's debugfs files never exist (as if CONFIG_DEBUG_FS=n)",
    ),
}


def check_debugfs_cmdline(root: Path = Path("/")) -> RuntimeCheck:
    params, why = read_kernel_params(root)
    if params is None:
        return _result("debugfs_cmdline", UNKNOWN, why, f"boot with debugfs=on ({EDIT_CMDLINE})")
    present, value = param_value(params, "debugfs")
    if not present:
        found = (
            "not set: the build-time default applies (CONFIG_DEBUG_FS_ALLOW_ALL unless the config chose "
            "CONFIG_DEBUG_FS_DISALLOW_MOUNT or CONFIG_DEBUG_FS_ALLOW_NONE)"
        )
        fix = f"if the build default restricts debugfs, boot with debugfs=on ({EDIT_CMDLINE})"
        return _result("debugfs_cmdline", OK, found, fix)
    fix = f"remove debugfs={value} from the kernel command line or replace it with debugfs=on ({EDIT_CMDLINE})"
    if value in _DEBUGFS_MODES:
        status, found = _DEBUGFS_MODES[value]
        return _result("debugfs_cmdline", status, found, fix)
    # debugfs_kernel() ignores anything but on / no-mount / off and keeps the build default
    return _result("debugfs_cmdline", WARNING, f"debugfs={value}: not a value the kernel knows, so it is ignored", fix)


# What each lockdown level blocks, per profile (security_locked_down() callers in 6.12).
_LOCKDOWN_INTEGRITY = {
    "module": (PROBLEM, "unsigned modules are refused (module_sig_check: LOCKDOWN_MODULE_SIGNATURE)"),
    "systemtap": (PROBLEM, "stap's probe modules are refused unless signed with an enrolled key"),
    "debugfs": (
        PROBLEM,
        "debugfs files with any write or exec bit, ioctl or mmap cannot be opened at all, "
        "not even for reading (debugfs_locked_down: LOCKDOWN_DEBUGFS)",
    ),
    "debug": (PROBLEM, "writable debugfs controls such as kmemleak cannot be opened (LOCKDOWN_DEBUGFS)"),
    "kprobes": (WARNING, "kprobes from an unsigned module are refused; kprobe events in tracefs still work"),
    "bpf": (WARNING, "bpf_probe_write_user() is refused (LOCKDOWN_BPF_WRITE_USER)"),
}
_LOCKDOWN_CONFIDENTIALITY = _LOCKDOWN_INTEGRITY | {
    "ftrace": (PROBLEM, "tracefs cannot be used at all (LOCKDOWN_TRACEFS)"),
    "kprobes": (PROBLEM, "kprobe events are refused (LOCKDOWN_KPROBES) and tracefs is locked"),
    "bpf": (
        PROBLEM,
        "BPF programs cannot read kernel memory (LOCKDOWN_BPF_READ_KERNEL), kprobe attach is refused "
        "(LOCKDOWN_KPROBES) and kernel perf sampling too (LOCKDOWN_PERF)",
    ),
}
LOCKDOWN_EFFECTS: dict[str, dict[str, tuple[str, str]]] = {
    "none": {},
    "integrity": _LOCKDOWN_INTEGRITY,
    "confidentiality": _LOCKDOWN_CONFIDENTIALITY,
}


def lockdown_effects(mode: str, profiles: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
    """{profile: (status, what is blocked)} for the profiles a lockdown mode gets in the way of."""
    wanted = _wanted(profiles)
    return {p: effect for p, effect in LOCKDOWN_EFFECTS.get(mode, {}).items() if p in wanted}


def check_lockdown(root: Path = Path("/"), profiles: Iterable[str] | None = None) -> RuntimeCheck:
    fix = (
        "lockdown cannot be lowered at runtime: boot without lockdown= on the command line; with UEFI "
        "Secure Boot, Debian and Ubuntu kernels lock down to integrity by themselves: disable Secure Boot "
        "(or 'mokutil --disable-validation'), or sign your modules with a key enrolled by 'mokutil --import'"
    )
    lockdown = read_lockdown(root)
    mode, source = lockdown.mode, lockdown.source
    if mode is None:
        unknown_fix = f"{MOUNT_SECURITYFS}, then check again" if lockdown.securityfs_unmounted else fix
        return _result("lockdown", UNKNOWN, source, unknown_fix)
    if mode not in LOCKDOWN_EFFECTS:
        return _result("lockdown", WARNING, f"unrecognised lockdown mode {mode!r} ({source})", fix)
    effects = lockdown_effects(mode, profiles)
    if not effects:
        also = "" if mode == "none" else "; it blocks nothing the requested profiles need"
        return _result("lockdown", OK, f"{mode} ({source}){also}", fix)
    blocked = "; ".join(f"{p}: {what}" for p, (_, what) in effects.items())
    return _result("lockdown", _worst(s for s, _ in effects.values()), f"{mode} ({source}): {blocked}", fix)


def module_signature_status(
    modules: bool, sig_enforce: bool | None, lockdown: str | None
) -> tuple[str, str]:
    """(status, found) for loading an unsigned out-of-tree module; sig_enforce None means the
    kernel does not check signatures (no CONFIG_MODULE_SIG), lockdown None means unknown."""
    if not modules:
        return PROBLEM, "the kernel has no loadable module support (CONFIG_MODULES=n: /proc/modules is absent)"
    if sig_enforce:
        return PROBLEM, (
            "sig_enforce=Y: unsigned modules are refused with EKEYREJECTED "
            "(from CONFIG_MODULE_SIG_FORCE=y, module.sig_enforce=1 at boot, or a Secure Boot/IMA policy)"
        )
    if lockdown in ("integrity", "confidentiality"):
        return PROBLEM, f"sig_enforce=N, but lockdown={lockdown} refuses unsigned modules all the same"
    if sig_enforce is None:
        return OK, "the kernel does not check module signatures (CONFIG_MODULE_SIG=n)"
    tail = "" if lockdown is not None else " (lockdown mode unknown: it would refuse them too)"
    return OK, f"sig_enforce=N: unsigned modules load, tainting the kernel (E){tail}"


def check_module_signatures(root: Path = Path("/")) -> RuntimeCheck:
    fix = (
        "sign the module with a key the kernel trusts: scripts/sign-file sha256 signing_key.pem "
        "signing_key.x509 mymod.ko (on a distro kernel: a key enrolled with 'mokutil --import'); "
        "module.sig_enforce=1 at boot can be removed, but CONFIG_MODULE_SIG_FORCE=y cannot be undone "
        "from the command line (sig_enforce is enable-only)"
    )
    modules = read_file(root, "/proc/modules", limit=1)
    if not modules.ok:
        if not (modules.missing and _exists(root, "/proc/self")):
            return _result("module_signatures", UNKNOWN, modules.why, fix)
        status, found = module_signature_status(False, None, None)
        fix = "rebuild the kernel with CONFIG_MODULES=y (the module profile)"
        return _result("module_signatures", status, found, fix)
    sig = read_file(root, SIG_ENFORCE_FILE, limit=16)
    if sig.ok:
        try:
            enforce: bool | None = parse_bool_param(sig.text)
        except ValueError as exc:
            return _result("module_signatures", UNKNOWN, f"{SIG_ENFORCE_FILE}: {exc}", fix)
    elif sig.missing:
        enforce = None  # signing.c (and its parameter) is built only with CONFIG_MODULE_SIG
    else:
        return _result("module_signatures", UNKNOWN, sig.why, fix)
    status, found = module_signature_status(True, enforce, read_lockdown(root).mode)
    return _result("module_signatures", status, found, fix)


_KPTR_MEANING = {
    0: "0: addresses shown; /proc/kallsyms shows them to unprivileged users only if perf_event_paranoid <= 1, "
    "otherwise to CAP_SYSLOG (root)",
    1: "1: %pK addresses and /proc/kallsyms only for CAP_SYSLOG (root)",
    2: "2: addresses hidden from everyone, root included: symbol resolution in stap, bcc and bpftrace breaks",
}


def kptr_restrict_status(value: int, hidden_here: bool | None) -> tuple[str, str]:
    """(status, found); `hidden_here`: whether /proc/kallsyms shows zeros to this process."""
    found = _KPTR_MEANING.get(value, f"{value}: outside 0..2")
    if value >= 2:
        return PROBLEM, found
    if hidden_here:
        return WARNING, found + "; this process sees zeros in /proc/kallsyms: run the tools as root"
    return OK, found


def check_kptr_restrict(root: Path = Path("/")) -> RuntimeCheck:
    fix = (
        "sysctl -w kernel.kptr_restrict=1 (keep it: 'kernel.kptr_restrict = 1' in /etc/sysctl.d/50-debug.conf); "
        "run the tools as root"
    )
    sysctl = read_sysctl(root, "kptr_restrict")
    if sysctl.value is None:
        return _result("kptr_restrict", UNKNOWN, sysctl.why, fix)
    sample = read_file(root, "/proc/kallsyms", limit=4096)
    status, found = kptr_restrict_status(sysctl.value, parse_kallsyms_hidden(sample.text) if sample.ok else None)
    return _result("kptr_restrict", status, found, fix)


_PARANOID_MEANING = {
    -1: "-1: all events open to all users",
    0: "0: unprivileged users lose raw tracepoints and ftrace function events",
    1: "1: unprivileged users also lose CPU-wide events",
    2: "2: unprivileged users also lose kernel profiling (the upstream default)",
}


def perf_event_paranoid_status(value: int) -> tuple[str, str]:
    if value in _PARANOID_MEANING:
        return OK, _PARANOID_MEANING[value] + "; root (CAP_PERFMON/CAP_SYS_ADMIN) is not limited"
    if value < -1:
        return OK, f"{value}: treated like -1"
    # Debian's patch (CONFIG_SECURITY_PERF_EVENTS_RESTRICT, default 3; read in linux-source-6.12):
    # perf_paranoid_any() refuses any perf_event_open() without CAP_SYS_ADMIN above 2.  Ubuntu ships 4,
    # which users report refuses unprivileged perf too (not checked against Ubuntu's source).
    return WARNING, (
        f"{value}: on Debian and Ubuntu kernels (patched; Debian defaults to 3, Ubuntu to 4) every "
        "perf_event_open() needs CAP_SYS_ADMIN, so only root can run perf, bcc or bpftrace; "
        "upstream kernels treat values above 2 like 2"
    )


def check_perf_event_paranoid(root: Path = Path("/")) -> RuntimeCheck:
    fix = "sysctl -w kernel.perf_event_paranoid=2 (or run the tools as root; keep it in /etc/sysctl.d/)"
    sysctl = read_sysctl(root, "perf_event_paranoid")
    if sysctl.absent:
        found = (
            "the kernel has no perf events (CONFIG_PERF_EVENTS=n: no perf_event_paranoid), "
            "which BPF kprobes and tracepoints need"
        )
        return _result("perf_event_paranoid", PROBLEM, found, "rebuild with CONFIG_PERF_EVENTS=y (the bpf profile)")
    if sysctl.value is None:
        return _result("perf_event_paranoid", UNKNOWN, sysctl.why, fix)
    status, found = perf_event_paranoid_status(sysctl.value)
    return _result("perf_event_paranoid", status, found, fix)


_UNPRIV_BPF_MEANING = {
    0: "0: unprivileged users may load socket-filter programs",
    1: "1: unprivileged bpf() disabled until reboot",
    2: "2: unprivileged bpf() disabled; root can set it back to 0",
}


def check_unprivileged_bpf(root: Path = Path("/")) -> RuntimeCheck:
    # Tracing programs need CAP_BPF + CAP_PERFMON (or root) whatever this says, so no value blocks bcc/bpftrace
    # run as root; the file's absence is what matters: it exists only with CONFIG_BPF_SYSCALL.
    fix = "run bcc and bpftrace as root (tracing programs always need CAP_BPF and CAP_PERFMON)"
    sysctl = read_sysctl(root, "unprivileged_bpf_disabled")
    if sysctl.absent:
        found = "the kernel has no bpf() syscall (CONFIG_BPF_SYSCALL=n: no unprivileged_bpf_disabled)"
        return _result("unprivileged_bpf", PROBLEM, found, "rebuild with CONFIG_BPF_SYSCALL=y (the bpf profile)")
    if sysctl.value is None:
        return _result("unprivileged_bpf", UNKNOWN, sysctl.why, fix)
    found = _UNPRIV_BPF_MEANING.get(sysctl.value, f"{sysctl.value}: outside 0..2")
    return _result("unprivileged_bpf", OK, found + "; tracing programs need root either way", fix)


def installed_header_releases(root: Path = Path("/")) -> list[str]:
    """Releases with a usable /lib/modules/<release>/build (a Makefile in it)."""
    try:
        entries = sorted(under(root, "/lib/modules").iterdir())
    except OSError:
        return []
    return [e.name for e in entries if _exists(root, f"/lib/modules/{e.name}/build/Makefile")]


def headers_release(root: Path, build: str) -> tuple[str | None, str]:
    """(release the headers in `build` are for, which file said so), or (None, "")."""
    uts = read_file(root, f"{build}/include/generated/utsrelease.h", limit=4096)
    if uts.ok and parse_utsrelease(uts.text):
        return parse_utsrelease(uts.text), "include/generated/utsrelease.h"
    # include/config/kernel.release is second: Debian's 6.1 headers hold the upstream 6.1.x there
    kernel_release = read_file(root, f"{build}/include/config/kernel.release", limit=4096)
    if kernel_release.ok and kernel_release.text.strip():
        return kernel_release.text.strip(), "include/config/kernel.release"
    return None, ""


def check_kernel_headers(
    root: Path = Path("/"), release: str | None = None, profiles: Iterable[str] | None = None
) -> RuntimeCheck:
    release = _release(release)
    build = f"/lib/modules/{release}/build"
    fix = (
        f"apt-get install linux-headers-{release} (Fedora: dnf install kernel-devel-{release}; a self-built "
        f"kernel: 'make modules_prepare' in its tree, and link the tree as {build})"
    )
    # bcc can use /sys/kernel/kheaders.tar.xz and bpftrace BTF instead, so for bpf alone it is a warning
    missing_status = PROBLEM if _wanted(profiles) & {"module", "debugfs", "systemtap"} else WARNING
    makefile = read_file(root, f"{build}/Makefile", limit=1 << 16)
    if makefile.missing:
        link = under(root, build)
        if link.is_symlink() and not _exists(root, build):
            found = f"{build} -> {os.readlink(link)}, which does not exist"
        elif _exists(root, build):
            found = f"{build} has no Makefile"
        else:
            found = f"no {build}"
        others = [r for r in installed_header_releases(root) if r != release]
        found += f"; headers are installed only for {', '.join(others)}" if others else "; no headers are installed"
        return _result("kernel_headers", missing_status, found + f" (running: {release})", fix)
    if not makefile.ok:
        return _result("kernel_headers", UNKNOWN, makefile.why, fix)
    headers_for, source = headers_release(root, build)
    if headers_for == release:
        return _result("kernel_headers", OK, f"{build} matches {release} ({source})", fix)
    if headers_for is not None:
        found = (
            f"{build} holds headers for {headers_for} ({source}), not {release}: "
            "modules built there will not load (vermagic)"
        )
        return _result("kernel_headers", PROBLEM, found, fix)
    version = parse_makefile_version(makefile.text)
    if version is not None:
        # Debian's release 6.1.0-56-amd64 comes from a 6.1.192 Makefile: only the series can be compared
        same_series = version.split(".")[:2] == re.split(r"[.-]", release)[:2]
        found = (
            f"{build}/Makefile says {version}; the headers are not prepared (no utsrelease.h), "
            "so the exact release is unconfirmed"
        )
        return _result("kernel_headers", WARNING if same_series else PROBLEM, found, fix)
    found = f"{build} has no include/generated/utsrelease.h: the tree is not prepared ('make modules_prepare')"
    return _result("kernel_headers", WARNING, found, fix)


def debuginfo_candidates(release: str) -> tuple[str, ...]:
    """Where distributions put a vmlinux with DWARF (Debian -dbg and Ubuntu -dbgsym use the first)."""
    return (
        f"/usr/lib/debug/boot/vmlinux-{release}",
        f"/usr/lib/debug/lib/modules/{release}/vmlinux",
        f"/boot/vmlinux-{release}",
        f"/lib/modules/{release}/build/vmlinux",
    )


def check_kernel_debuginfo(root: Path = Path("/"), release: str | None = None) -> RuntimeCheck:
    release = _release(release)
    fix = (
        f"Debian: apt-get install linux-image-{release}-dbg; Ubuntu: add the ddebs.ubuntu.com repository, then "
        f"apt-get install linux-image-{release}-dbgsym (linux-image-unsigned-{release}-dbgsym for signed kernels); "
        "SystemTap's stap-prep does this where it knows the distribution; a self-built kernel: pick a DWARF "
        "option in the 'Debug information' choice and install its vmlinux as "
        f"/usr/lib/debug/lib/modules/{release}/vmlinux"
    )
    without_dwarf, unreadable = [], []
    for candidate in debuginfo_candidates(release):
        try:
            names = read_elf_sections(under(root, candidate))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            unreadable.append(f"{candidate} (permission denied)")
            continue
        except OSError as exc:
            unreadable.append(f"{candidate} ({exc.strerror or exc})")
            continue
        except ValueError as exc:
            without_dwarf.append(f"{candidate} ({exc})")
            continue
        if has_dwarf(names):
            return _result("kernel_debuginfo", OK, f"{candidate} has DWARF (.debug_info)", fix)
        without_dwarf.append(f"{candidate} (no .debug_info: stripped)")
    if unreadable:
        return _result("kernel_debuginfo", UNKNOWN, "cannot read " + "; ".join(unreadable), fix)
    if without_dwarf:
        found = "no vmlinux with DWARF: " + "; ".join(without_dwarf) + " (kernel.function() probes need DWARF)"
        return _result("kernel_debuginfo", PROBLEM, found, fix)
    found = f"no vmlinux for {release} in " + ", ".join(debuginfo_candidates(release))
    return _result("kernel_debuginfo", PROBLEM, found + " (kernel.function() probes need DWARF)", fix)


def check_btf(root: Path = Path("/")) -> RuntimeCheck:
    fix = (
        "rebuild with CONFIG_DEBUG_INFO_BTF=y (pahole >= 1.16 must be installed when building); meanwhile bcc "
        "can use the kernel headers, and bpftrace a BTF file from BTFHub (BPFTRACE_BTF=/path/to/file.btf)"
    )
    f = read_file(root, BTF_FILE, limit=16)
    if f.ok:
        if is_btf(f.data or b""):
            return _result("btf", OK, f"{BTF_FILE} present: CO-RE tools can resolve kernel types", fix)
        return _result("btf", WARNING, f"{BTF_FILE} exists but does not start with the BTF magic", fix)
    if f.missing and _exists(root, "/sys/kernel"):
        found = f"no {BTF_FILE}: the kernel carries no BTF (CONFIG_DEBUG_INFO_BTF=n, or pahole missing at build time)"
        return _result("btf", PROBLEM, found, fix)
    return _result("btf", UNKNOWN, f.why, fix)


_Runner = Callable[[Path, str, frozenset[str]], RuntimeCheck]
CHECKS: dict[str, _Runner] = {
    "debugfs_mount": lambda root, release, profiles: check_debugfs_mount(root),
    "tracefs_mount": lambda root, release, profiles: check_tracefs_mount(root),
    "debugfs_cmdline": lambda root, release, profiles: check_debugfs_cmdline(root),
    "lockdown": lambda root, release, profiles: check_lockdown(root, profiles),
    "module_signatures": lambda root, release, profiles: check_module_signatures(root),
    "kptr_restrict": lambda root, release, profiles: check_kptr_restrict(root),
    "perf_event_paranoid": lambda root, release, profiles: check_perf_event_paranoid(root),
    "unprivileged_bpf": lambda root, release, profiles: check_unprivileged_bpf(root),
    "kernel_headers": lambda root, release, profiles: check_kernel_headers(root, release, profiles),
    "kernel_debuginfo": lambda root, release, profiles: check_kernel_debuginfo(root, release),
    "btf": lambda root, release, profiles: check_btf(root),
}


def check_runtime(
    profiles: set[str] | None = None, root: Path = Path("/"), release: str | None = None
) -> list[RuntimeCheck]:
    """The checks relevant to `profiles` (all of them when None), in a fixed order."""
    wanted = _wanted(profiles)
    release = _release(release)
    results = []
    for key, run in CHECKS.items():
        if not wanted & set(_META[key].needed_by):
            continue
        try:
            results.append(run(root, release, wanted))
        except (OSError, ValueError, UnicodeError) as exc:  # a safety net: a check never takes the report down
            results.append(_result(key, UNKNOWN, f"check failed: {exc}", "report this as a dbgscaffold bug"))
    return results
