"""QEMU: machine settings as data, one pure function to the argv, a run that always reaps.

Two serial ports, like virtme-ng's side channel: ttyS0 is the console (kernel
log and /init's chatter, streamed through QEMU's stdout so we can timestamp
it), ttyS1 carries only the results (KTAP), to a file, so a noisy console
cannot corrupt them. microvm builds one UART itself; the second is an
explicit `-device isa-serial` at the legacy COM2 address, which the 8250
driver finds without ACPI's help.

Reaping: QEMU runs in its own session (process group); every exit path of
run() (normal, timeout, exception, KeyboardInterrupt) kills that group and
waits; PR_SET_PDEATHSIG kills QEMU if the Python process itself dies hard.

Pure: argv(), choose_accel(), tsc_khz_from(), ended_how(). Edges: probe_accel(),
host_tsc_khz(), run().
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ..bounded import Kept
from ..errors import EnvironmentProblem
from ..procs import kill_group, vm_child_setup
from .initramfs import BOOT_MARKER

QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class SerialPort:
    """A guest UART and where its bytes go."""

    id: str  # chardev id
    backend: str  # "stdio" (streamed), "file" (path), "socket" (a unix socket QEMU serves), "null"
    path: str = ""  # for "file" and "socket"; the caller fills it in
    iobase: int | None = None  # None: the machine's own first UART; else an extra isa-serial
    irq: int = 4


CONSOLE = SerialPort("console", "stdio")  # ttyS0
RESULTS = SerialPort("results", "file", iobase=0x2F8, irq=3)  # ttyS1 (COM2)
# The agent's two-way channel on the same UART: payloads in, KTAP out (session.py).
AGENT_PORT = SerialPort("results", "socket", iobase=0x2F8, irq=3)

# Kernel arguments that make a TCG boot ~2 s instead of ~3.5 s (measured here);
# cryptomgr.notests is the big one (the crypto self-tests are pure CPU work).
FAST_APPEND = (
    "console=ttyS0",
    "quiet",
    "cryptomgr.notests",
    # jent_mod_init: 6.12's built-in jitter-entropy RNG health test times CPU
    # jitter, ~0.2-0.4 s under TCG; the DRBG does without it outside FIPS mode.
    "initcall_blacklist=init_kprobe_trace,load_system_certificate_list,crypto_kdf108_init,jent_mod_init",
    "init_on_alloc=0",
    "rodata=off",
    "lsm=capability",
    "audit=0",
    "nowatchdog",
    "mitigations=off",
    "panic=-1",  # with -no-reboot: a guest panic becomes a QEMU exit
)
# What a person would type first; the benchmark's baseline.
NAIVE_APPEND = ("console=ttyS0", "panic=-1")


@dataclass(frozen=True)
class Machine:
    """Everything QEMU needs, as data. argv() turns it into a command line."""

    kernel: Path
    initrd: Path | None = None
    append: tuple[str, ...] = ()  # fast_machine() / naive_machine() fill this in
    machine: str = "microvm"
    machine_opts: tuple[str, ...] = ()  # e.g. ("pit=off",)
    # max: TCG's SMEP/SMAP/UMIP catch a module touching user memory directly;
    # it boots as fast as qemu64 here (within the noise). None: QEMU's default.
    cpu: str | None = "max"
    memory_mb: int = 256
    smp: int = 1
    accel: str = "tcg"
    serial: tuple[SerialPort, ...] = (CONSOLE, RESULTS)
    nodefaults: bool = True  # no NIC, VGA, floppy, CD-ROM, monitor
    no_reboot: bool = True
    extra: tuple[str, ...] = ()
    qemu: str = QEMU
    qmp: str = ""  # a unix socket path for QMP (snapshots), "" for none
    incoming: str = ""  # -incoming URI: start from a saved state instead of booting


@dataclass(frozen=True)
class AccelChoice:
    accel: str  # "kvm" or "tcg"
    reason: str


@dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    exit_status: int | None  # QEMU's exit code; None if we killed it
    timed_out: bool
    console: str  # ttyS0, as the host saw it
    results: str  # ttyS1
    stderr: str  # QEMU's own complaints
    wall_seconds: float  # spawn -> exit (or kill)
    boot_seconds: float | None  # spawn -> /init's BOOT_MARKER on the console
    forged: tuple[str, ...] = ()  # results-port lines without the payload's token (the first few): not results
    forged_count: int = 0

    @property
    def ended(self) -> str:
        return ended_how(self)


def fast_machine(kernel: Path, initrd: Path | None, append: Sequence[str] = (), tsc_khz: int | None = None, **overrides) -> Machine:
    """microvm + PVH vmlinux + trimmed arguments. microvm has no HPET, so under TCG
    the kernel would calibrate the TSC against the PIT, which hangs most boots:
    tsc_early_khz= tells it the rate (TCG's guest TSC ticks at the host's rate)."""
    khz = tsc_khz if tsc_khz is not None else host_tsc_khz()
    args = FAST_APPEND + ((f"tsc_early_khz={khz}",) if khz else ()) + tuple(append)
    return Machine(kernel=Path(kernel), initrd=initrd, append=args, **overrides)


def naive_machine(kernel: Path, initrd: Path | None, append: Sequence[str] = (), **overrides) -> Machine:
    """The default PC machine, firmware and devices, untrimmed: the baseline."""
    return Machine(
        kernel=Path(kernel), initrd=initrd, append=NAIVE_APPEND + tuple(append),
        machine="pc", cpu=None, nodefaults=False, **overrides,
    )


# ---------------------------------------------------------------- argv (pure)


def _chardev(port: SerialPort) -> str:
    if port.backend == "stdio":
        return f"stdio,id={port.id},signal=off"  # signal=off: ^C is not QEMU's business
    if port.backend == "file":
        if not port.path:
            raise ValueError(f"serial port {port.id!r}: a file backend needs a path")
        return f"file,id={port.id},path={port.path}"
    if port.backend == "socket":
        if not port.path:
            raise ValueError(f"serial port {port.id!r}: a socket backend needs a path")
        # wait=on: QEMU starts the guest only once we are connected, so not a byte is lost.
        return f"socket,id={port.id},path={port.path},server=on,wait=on"
    if port.backend == "null":
        return f"null,id={port.id}"
    raise ValueError(f"serial port {port.id!r}: unknown backend {port.backend!r}")


def argv(m: Machine) -> list[str]:
    """The QEMU command line for `m`; the same data gives the same argv."""
    machine = ",".join((m.machine,) + m.machine_opts)
    out = [m.qemu, "-M", machine, "-accel", m.accel, "-m", str(m.memory_mb), "-smp", str(m.smp)]
    if m.cpu:
        out += ["-cpu", m.cpu]
    if m.nodefaults:
        out += ["-nodefaults", "-no-user-config"]
    out += ["-display", "none", "-monitor", "none"] if not m.nodefaults else ["-display", "none"]
    if m.no_reboot:
        out.append("-no-reboot")
    out += ["-kernel", str(m.kernel)]
    if m.initrd is not None:
        out += ["-initrd", str(m.initrd)]
    if m.append:
        out += ["-append", " ".join(m.append)]
    builtin_uarts = 0
    for port in m.serial:
        out += ["-chardev", _chardev(port)]
        if port.iobase is None:
            if builtin_uarts:
                raise ValueError("only the first serial port can be the machine's own UART")
            out += ["-serial", f"chardev:{port.id}"]
            builtin_uarts += 1
        else:
            out += ["-device", f"isa-serial,chardev={port.id},iobase={port.iobase:#x},irq={port.irq}"]
    if m.qmp:
        out += ["-qmp", f"unix:{m.qmp},server=on,wait=off"]
    if m.incoming:
        out += ["-incoming", m.incoming]
    out += list(m.extra)
    return out


# ---------------------------------------------------------------- accel


def choose_accel(requested: str, kvm_device_ok: bool, cpu_flags: set[str], kvm_check: Callable[[], tuple[bool, str]]) -> AccelChoice:
    """`kvm`/`tcg` are obeyed; `auto` takes KVM only when all three signs agree.
    (A /dev/kvm node alone proves nothing: here it exists, the CPU has no
    vmx/svm, and -enable-kvm hangs in the firmware.)"""
    if requested in ("kvm", "tcg"):
        return AccelChoice(requested, f"{requested} requested")
    if requested != "auto":
        raise ValueError(f"accel must be auto, kvm or tcg, not {requested!r}")
    if not kvm_device_ok:
        return AccelChoice("tcg", "TCG: /dev/kvm is missing or not read-writable by this user")
    if not cpu_flags & {"vmx", "svm"}:
        return AccelChoice("tcg", "TCG: the CPU flags have neither vmx nor svm (no hardware virtualization exposed)")
    ok, detail = kvm_check()
    if not ok:
        return AccelChoice("tcg", f"TCG: a test boot with -accel kvm failed ({detail})")
    return AccelChoice("kvm", "KVM: /dev/kvm usable, vmx/svm present, test boot passed")


def _cpu_flags(cpuinfo: str) -> set[str]:
    m = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)
    return set(m.group(1).split()) if m else set()


def tiny_pvh_elf(exit_value: int = 0x31, hang: bool = False) -> bytes:
    """A 32-bit ELF with a PVH note whose code writes `exit_value` to
    isa-debug-exit (port 0xf4): QEMU exits with (exit_value << 1) | 1.
    A guest that runs 3 instructions proves an accelerator executes code at all.
    With hang=True it spins forever instead (for timeout tests: no kernel needed)."""
    load = 0x100000
    if hang:
        code = bytes([0xEB, 0xFE])  # jmp $
    else:
        code = bytes([0xB0, exit_value & 0xFF, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD])  # mov al,v; out 0xf4,al; hlt; jmp $-1
    note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", load)
    ehsize, phsize = 52, 32
    code_off = ehsize + 2 * phsize
    note_off = code_off + len(code) + (-len(code) % 4)
    header = struct.pack(
        "<4sBBBB8sHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, b"\0" * 8,
        2, 3, 1, load, ehsize, 0, 0, ehsize, phsize, 2, 40, 0, 0,
    )
    ph_load = struct.pack("<IIIIIIII", 1, code_off, load, load, len(code), len(code), 5, 0x1000)
    ph_note = struct.pack("<IIIIIIII", 4, note_off, 0, 0, len(note), len(note), 4, 4)
    body = header + ph_load + ph_note + code
    return body + b"\0" * (note_off - len(body)) + note


def tiny_machine(kernel: Path, accel: str = "tcg", qemu: str = QEMU) -> Machine:
    """A machine for tiny_pvh_elf(): no kernel arguments, no serial, an exit port."""
    return Machine(
        kernel=Path(kernel), append=(), accel=accel, cpu=None, memory_mb=32, serial=(),
        extra=("-device", "isa-debug-exit,iobase=0xf4,iosize=1"), qemu=qemu,
    )


def tiny_boot(accel: str, timeout: float = 10.0, qemu: str = QEMU) -> tuple[bool, str]:
    """Boot tiny_pvh_elf() under `accel`; (True, detail) if it exited as it should."""
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-accel-") as tmp:
        elf = Path(tmp) / "tiny.elf"
        elf.write_bytes(tiny_pvh_elf())
        r = run(tiny_machine(elf, accel, qemu), timeout=timeout)
    if r.timed_out:
        return False, f"no exit within {timeout:g} s"
    if r.exit_status != (0x31 << 1) | 1:
        return False, f"exit status {r.exit_status}: {r.stderr.strip()[:200]}"
    # Seen on a nested host where a real kernel then hangs under KVM: its
    # CPUID lacks even SSE3 (pni), so the 3-instruction guest is not proof enough.
    if "host doesn't support requested feature" in r.stderr:
        return False, "KVM's CPUID lacks basic features: " + r.stderr.strip().splitlines()[0][:200]
    return True, f"{r.wall_seconds:.2f} s"


def probe_accel(requested: str = "auto", qemu: str = QEMU) -> AccelChoice:
    """Probe, never assume: see choose_accel()."""
    dev_ok = os.access("/dev/kvm", os.R_OK | os.W_OK)
    try:
        flags = _cpu_flags(Path("/proc/cpuinfo").read_text())
    except OSError:
        flags = set()
    return choose_accel(requested, dev_ok, flags, lambda: tiny_boot("kvm", timeout=10.0, qemu=qemu))


# ---------------------------------------------------------------- TSC rate


def tsc_khz_from(sysfs_khz: str | None, cpuinfo: str) -> tuple[int | None, str]:
    """The host TSC rate in kHz and where it came from, without dmesg (which may be
    restricted or rotated). Order: a kernel-reported tsc_freq_khz; the brand
    string's '@ 2.10GHz' (Intel's nominal rate, which an invariant TSC ticks at);
    /proc/cpuinfo 'cpu MHz' (in a VM, or without cpufreq, that is the TSC rate;
    on bare metal with frequency scaling it can be off, which only makes the
    guest clock run fast or slow, not the boot hang)."""
    if sysfs_khz and sysfs_khz.strip().isdigit():
        return int(sysfs_khz.strip()), "tsc_freq_khz in sysfs"
    m = re.search(r"^model name\s*:.*@\s*([\d.]+)\s*GHz", cpuinfo, re.M)
    if m:
        return round(float(m.group(1)) * 1_000_000), "the CPU brand string"
    m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    if m:
        return round(float(m.group(1)) * 1000), "/proc/cpuinfo cpu MHz"
    return None, "unknown"


def host_tsc_khz() -> int | None:
    def read(p: str) -> str | None:
        try:
            return Path(p).read_text()
        except OSError:
            return None

    khz, _source = tsc_khz_from(read("/sys/devices/system/cpu/cpu0/tsc_freq_khz"), read("/proc/cpuinfo") or "")
    return khz


# ---------------------------------------------------------------- running


def ended_how(r: RunResult) -> str:
    """'timeout', 'panic', 'poweroff', 'reboot', 'qemu-error' or 'unknown'.
    (panic=-1 reboots at once without a message; -no-reboot makes that an exit.)"""
    if r.timed_out:
        return "timeout"
    if "Kernel panic - not syncing" in r.console:
        return "panic"
    if "reboot: Power down" in r.console:
        return "poweroff"
    if "reboot: Restarting system" in r.console or "Rebooting in" in r.console:
        return "reboot"
    if r.exit_status not in (0, None):
        return "qemu-error"
    return "unknown"


def require(qemu: str) -> None:
    """EnvironmentProblem (exit 4, with the package to install) when `qemu` is not on PATH."""
    if shutil.which(qemu) is None:
        raise EnvironmentProblem(f"error: '{qemu}' is not installed (or not on PATH). Fix: apt-get install qemu-system-x86, "
                                 "or see: dbgscaffold doctor.")


def spawn(command: Sequence[str]) -> subprocess.Popen:
    """QEMU in its own process group, dying with us; stdout/stderr piped for Reader.
    Whoever spawns must kill_group() it on every path out."""
    require(command[0])
    return subprocess.Popen(
        list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=vm_child_setup,
    )


@dataclass
class Reader:
    """Drains one pipe in a thread; notes when `marker` first shows up. With `keep`,
    what it holds is bounded: the first and last `keep` bytes since the last mark()
    (a guest flooding printk must not fill the host's memory)."""

    stream: IO[bytes]
    marker: bytes | None = None
    start: float = 0.0
    keep: int = 1 << 62
    marker_at: float | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.kept = Kept(self.keep)
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        tail = b""
        for chunk in iter(lambda: os.read(self.stream.fileno(), 65536), b""):
            with self.lock:
                self.kept.add(chunk)
            if self.marker and self.marker_at is None:
                tail = (tail + chunk)[-(len(self.marker) + len(chunk)) :]
                if self.marker in tail:
                    self.marker_at = time.monotonic() - self.start

    def mark(self) -> None:
        """Forget what arrived so far: data() starts here."""
        with self.lock:
            self.kept = Kept(self.keep)

    def data(self) -> bytes:
        """What arrived since the last mark() (the drain thread may still be appending)."""
        with self.lock:
            return self.kept.bytes()

    def text(self) -> str:
        self.thread.join(timeout=5)
        return self.data().decode("utf-8", "replace")


def run(machine: Machine, timeout: float, workdir: Path | None = None, boot_marker: str = BOOT_MARKER) -> RunResult:
    """Run QEMU to exit or to `timeout` seconds; QEMU never outlives this call.

    With `workdir`, the serial logs stay there (console.log, results.log);
    otherwise they live in a temporary directory and only in the result."""
    if shutil.which(machine.qemu) is None:
        raise EnvironmentProblem(f"error: '{machine.qemu}' is not installed. Fix: apt-get install qemu-system-x86.")
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-vm-") as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        ports = tuple(
            replace(p, path=str(where / f"{p.id}.log")) if p.backend == "file" and not p.path else p for p in machine.serial
        )
        for p in ports:
            if p.backend == "file":
                Path(p.path).write_bytes(b"")  # no stale results from an earlier run
        command = argv(replace(machine, serial=ports))
        start = time.monotonic()
        proc = spawn(command)
        timed_out = False
        out = err = None
        assert proc.stdout is not None and proc.stderr is not None  # spawn() pipes both
        try:
            out = Reader(proc.stdout, boot_marker.encode() if boot_marker else None, start)
            err = Reader(proc.stderr)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            # Every path out (timeout, exception, ^C) goes through here.
            kill_group(proc)
            wall = time.monotonic() - start
            # The guest tty turns \n into \r\n (ONLCR); the results port is set raw.
            console = out.text().replace("\r\n", "\n") if out else ""
            stderr = err.text() if err else ""
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        results = ""
        for p in ports:
            if p.backend == "file" and p.id == "results":
                results = Path(p.path).read_text(errors="replace")
        if workdir is not None and any(p.backend == "stdio" for p in ports):
            (where / "console.log").write_text(console)
    return RunResult(
        argv=tuple(command),
        exit_status=None if timed_out else proc.returncode,
        timed_out=timed_out,
        console=console,
        results=results,
        stderr=stderr,
        wall_seconds=wall,
        boot_seconds=out.marker_at if out else None,
    )
