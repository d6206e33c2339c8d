"""`dbgscaffold vm shell`: the test VM with modules loaded, a shell on the serial console.

The initrd is two newc archives back to back (the kernel unpacks both): the
cached shell initramfs, the same for every module (busybox with the shell
applets, the check library, a generic /init), then a small per-run archive
under agent.PAYLOAD_ROOT with the .ko files and run.sh, which /init sources
(load the modules, cd to the debugfs root). What a ShellGuest holds is made
above this layer (runner.shell for a module project, the lab package for a
lab project); its extra files go where it says (e.g. a lab's files to /root).
So the cache holds one shell initramfs, not one per module.

The console is QEMU's stdio, so the user's terminal is the guest's ttyS0 (QEMU
puts a terminal in raw mode itself; ^C goes to the guest). Exiting the shell
returns from /init, which powers off; QEMU then exits. QEMU is stopped if it
outlives this call (an optional timeout, an exception, ^C).

Pure: shell_init(), run_script(), overlay(). Edges: shell_initrd(), run_shell().
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import termios
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..procs import child_setup
from .agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT
from .images import KernelPair, boot_image
from .initramfs import APPLETS, DEBUGFS, FileSpec, build_initramfs, file_members, init_script, newc_archive
from .qemu import CONSOLE, argv, fast_machine, probe_accel, require

SHELL_APPLETS = APPLETS + ("setsid", "cttyhack", "vi", "less", "hexdump", "basename", "dirname", "env", "id", "ps", "kill", "clear")
HOME = "/root"  # a lab project's files land here
TRACEFS = "/sys/kernel/tracing"


@dataclass(frozen=True)
class ShellModule:
    name: str
    ko: Path  # the stripped .ko on the host
    params: str = ""  # insmod's parameters
    debug_ko: Path | None = None  # with --gdb: the unstripped .ko where gdb reads it (on the host)

    @property
    def ko_guest(self) -> str:
        return f"{PAYLOAD_ROOT}/{self.ko.name}"


@dataclass(frozen=True)
class ShellGuest:
    """What one `vm shell` run puts in front of the cached initramfs."""

    modules: tuple[ShellModule, ...]  # in load order
    root: str = ""  # the debugfs directory to start in, "" for none
    files: tuple[FileSpec, ...] = ()  # extra guest files (absolute dest paths, e.g. under HOME)
    variables: tuple[tuple[str, str], ...] = ()  # exported to the shell, beside MODULE, MODULES, ROOT and KO
    library: str = ""  # the check library's guest path, for the banner
    gdb: str = ""  # with --gdb: the gdb command up to its add-symbol-file (the guest completes and prints it)

    @property
    def library_note(self) -> str:
        return f" The check library: . {self.library}" if self.library else ""

    @property
    def name(self) -> str:
        return " ".join(m.name for m in self.modules)


def shell_init() -> str:
    """The cached /init body, module-independent: tracefs, the per-run run.sh sourced
    (so its cd sticks), a shell with fd 3 on the console, where the check library's
    ok/diag write their KTAP (cttyhack closes every fd above 2: so set after it)."""
    return f"""echo 3 > /proc/sys/kernel/printk
mount -t tracefs nodev {TRACEFS} 2>/dev/null
export HOME={HOME}
mkdir -p $HOME
cd $HOME
. {PAYLOAD_SCRIPT}
setsid cttyhack sh -c 'exec sh 3>&1'
"""


def run_script(guest: ShellGuest) -> str:
    """The per-run run.sh: the variables the checks see, insmod of each module, cd into the debugfs root."""
    root = f"{DEBUGFS}/{guest.root}" if guest.root else ""
    first = guest.modules[0]
    variables = (("MODULE", first.name), ("MODULES", guest.name), ("ROOT", root), ("KO", first.ko_guest), *guest.variables)
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables)
    where = f"its files are in {root}" if root else f"its files are where it makes them ({DEBUGFS}, /proc, /sys/module/{first.name}/parameters)"
    if guest.files:
        where += f"; the project's lab files are in {HOME}"
    cd = f"    cd {shlex.quote(root)} 2>/dev/null\n" if root else ""
    loads = " && ".join(f"insmod {shlex.quote(m.ko_guest)}{' ' + m.params if m.params else ''}" for m in guest.modules)
    return f"""{exports}if {loads}; then
    echo "dbgscaffold: {guest.name} loaded; {where}.{guest.library_note} (exit the shell to power off)"
{_gdb_lines(guest)}{cd}else
    echo "dbgscaffold: insmod of {guest.name} failed; here is a shell anyway (exit to power off)"
fi
export PS1='[{first.name}] \\w # '
"""


def _gdb_lines(guest: ShellGuest) -> str:
    """With --gdb: the command to attach, each module's sections read where it was loaded
    (one grep each: a section file answers only a read at offset 0; ash's read goes bytewise)."""
    lines = ""
    for m in guest.modules:
        if not guest.gdb or m.debug_ko is None:
            continue
        lines += (f"    _f=; for _s in .text .data .rodata .bss; do _a=$(grep -h . /sys/module/{m.name}/sections/$_s 2>/dev/null) || continue; "
                  'if [ $_s = .text ]; then _f="$_a$_f"; else _f="$_f -s $_s $_a"; fi; done\n'
                  f"    echo \"gdb: {_in_double_quotes(guest.gdb)} -ex 'add-symbol-file {_in_double_quotes(str(m.debug_ko))} $_f'\"\n")
    return lines


def _in_double_quotes(text: str) -> str:
    """`text` as it stays itself inside a double-quoted shell word (no $, ` or \\ expands)."""
    return "".join("\\" + ch if ch in '\\"$`' else ch for ch in text)


def overlay(guest: ShellGuest) -> bytes:
    """The per-run archive: run.sh, the .ko and the guest's files, with their directories."""
    files = [FileSpec(PAYLOAD_SCRIPT, run_script(guest).encode(), 0o644),
             *(FileSpec.from_path(m.ko_guest, m.ko, 0o644) for m in guest.modules), *guest.files]
    return newc_archive(file_members(files))


def shell_initramfs(library: Sequence[FileSpec] = (), cache: Path | None = None) -> Path:
    """The cached shell initramfs, shared by every module: `library` is the check library's files."""
    return build_initramfs(init_script(shell_init()), list(library), applets=SHELL_APPLETS, cache=cache)


def shell_initrd(guest: ShellGuest, out: Path, library: Sequence[FileSpec] = (), cache: Path | None = None) -> Path:
    """Write the cached initramfs followed by the run's overlay to `out` (a scratch file)."""
    base = shell_initramfs(library, cache)
    with open(out, "wb") as f:
        with open(base, "rb") as b:
            shutil.copyfileobj(b, f)
        f.write(overlay(guest))
    return out


def run_shell(guest: ShellGuest, pair: KernelPair, workdir: Path, accel: str = "auto", timeout: float | None = None,
              library: Sequence[FileSpec] = (), gdb_port: int | None = None) -> int:
    """Pack `guest` (its .ko files built by the caller), boot with the terminal as the
    console; QEMU's exit status (124: timed out). `library`: the check library's files.
    `gdb_port`: QEMU's gdb stub there, the kernel booted nokaslr."""
    choice = probe_accel(accel)
    initrd = shell_initrd(guest, Path(workdir) / "initrd.cpio", library)
    image = boot_image(pair.image, pair.release)
    machine = replace(fast_machine(image.path, initrd, ("nokaslr",) if gdb_port else (), accel=choice.accel), serial=(CONSOLE,),
                      extra=("-gdb", f"tcp:127.0.0.1:{gdb_port}") if gdb_port else ())
    require(machine.qemu)
    return _run_attached(argv(machine), timeout)


def _run_attached(command: Sequence[str], timeout: float | None) -> int:
    """QEMU on our terminal (same process group: it must read the tty); always reaped,
    and the terminal's settings restored if QEMU did not get to do it."""
    saved = _termios()
    proc = subprocess.Popen(list(command), preexec_fn=child_setup)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124
    finally:
        if proc.poll() is None:
            proc.terminate()  # lets QEMU restore the terminal itself
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if saved is not None:
            with contextlib.suppress(termios.error, OSError, ValueError):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, saved)


def _termios():
    with contextlib.suppress(termios.error, OSError, ValueError):
        return termios.tcgetattr(sys.stdin.fileno()) if os.isatty(sys.stdin.fileno()) else None
    return None
