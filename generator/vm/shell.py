"""`dbgscaffold vm shell`: the test VM with the module loaded, a shell on the serial console.

The initrd is two newc archives back to back (the kernel unpacks both): the
cached shell initramfs, the same for every module (busybox with the shell
applets, the check library, a generic /init), then a small per-run archive
under agent.PAYLOAD_ROOT with the .ko and run.sh, which /init sources (load
the module, cd to its debugfs root). A lab project's files (its student_files
and tests/) go to /root, so its scripts can be run by hand. So the cache holds
one shell initramfs, not one per module.

The console is QEMU's stdio, so the user's terminal is the guest's ttyS0 (QEMU
puts a terminal in raw mode itself; ^C goes to the guest). Exiting the shell
returns from /init, which powers off; QEMU then exits. QEMU is stopped if it
outlives this call (an optional timeout, an exception, ^C).

Pure: shell_init(), run_script(), overlay(). Edges: shell_project(), shell_initrd(), run_shell().
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import termios
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..errors import EnvironmentProblem, UserError
from .agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT
from .checks import DEBUGFS, GUEST_LIB, guest_library
from .images import KernelPair, boot_image
from .initramfs import APPLETS, FileSpec, build_initramfs, file_members, init_script, newc_archive
from .qemu import CONSOLE, _child_setup, argv, fast_machine, probe_accel

SHELL_APPLETS = APPLETS + ("setsid", "cttyhack", "vi", "less", "hexdump", "find", "basename", "dirname", "env", "id", "ps", "kill", "clear")
HOME = "/root"  # a lab project's files land here
TRACEFS = "/sys/kernel/tracing"


@dataclass(frozen=True)
class ShellGuest:
    """What one `vm shell` run puts in front of the cached initramfs."""

    module: str
    ko: Path  # the stripped .ko on the host
    root: str = ""  # its debugfs root, "" for none
    files: tuple[FileSpec, ...] = ()  # extra guest files (absolute dest paths, e.g. under HOME)
    variables: tuple[tuple[str, str], ...] = ()  # exported to the shell, beside MODULE, ROOT and KO

    @property
    def ko_guest(self) -> str:
        return f"{PAYLOAD_ROOT}/{self.module}.ko"


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
    """The per-run run.sh: the variables the checks see, insmod, cd into the debugfs root."""
    root = f"{DEBUGFS}/{guest.root}" if guest.root else ""
    variables = (("MODULE", guest.module), ("ROOT", root), ("KO", guest.ko_guest), *guest.variables)
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables)
    where = f"its files are in {root}" if root else "it has no debugfs root"
    if guest.files:
        where += f"; the project's lab files are in {HOME}"
    cd = f"    cd {shlex.quote(root)} 2>/dev/null\n" if root else ""
    return f"""{exports}if insmod "$KO"; then
    echo "dbgscaffold: {guest.module} loaded; {where}. The check library: . {GUEST_LIB} (exit the shell to power off)"
{cd}else
    echo "dbgscaffold: insmod {guest.module} failed; here is a shell anyway (exit to power off)"
fi
export PS1='[{guest.module}] \\w # '
"""


def overlay(guest: ShellGuest) -> bytes:
    """The per-run archive: run.sh, the .ko and the guest's files, with their directories."""
    files = [FileSpec(PAYLOAD_SCRIPT, run_script(guest).encode(), 0o644), FileSpec.from_path(guest.ko_guest, guest.ko, 0o644), *guest.files]
    return newc_archive(file_members(files))


def shell_initramfs(cache: Path | None = None) -> Path:
    """The cached shell initramfs, shared by every module."""
    return build_initramfs(init_script(shell_init()), [FileSpec(GUEST_LIB, guest_library().encode(), 0o644)],
                           applets=SHELL_APPLETS, cache=cache)


def shell_initrd(guest: ShellGuest, out: Path, cache: Path | None = None) -> Path:
    """Write the cached initramfs followed by the run's overlay to `out` (a scratch file)."""
    base = shell_initramfs(cache)
    with open(out, "wb") as f:
        with open(base, "rb") as b:
            shutil.copyfileobj(b, f)
        f.write(overlay(guest))
    return out


# ---------------------------------------------------------------- projects (edge)


@dataclass(frozen=True)
class ShellProject:
    """A directory vm shell can boot: a generated module (spec) or a module lab (lab)."""

    path: Path
    spec: object = None  # spec.Spec of a generated module
    lab: object = None  # lab.manifest.Lab of a lab project


def shell_project(project: Path) -> ShellProject:
    """What kind of project `project` is, before any kernel or build is involved;
    a UserError (exit 2) saying what to pass instead."""
    from ..lab.manifest import find_lab
    from ..lab.project import MARKER, lab_of
    from ..render import SPEC_FILE
    from .runner import load_project_spec

    project = Path(project).resolve()
    if not project.is_dir():
        raise UserError(f"{project}: error: no such directory. Fix: pass the module's directory.")
    if (project / MARKER).is_file():
        lab = find_lab(lab_of(project))
        if lab.kind != "module":
            raise UserError(f"{project}: error: lab {lab.id!r} is a {lab.kind} lab; vm shell loads a kernel module you build. "
                            f"Fix: run its checks with 'dbgscaffold lab check {project}'.")
        return ShellProject(project, lab=lab)
    if not (project / SPEC_FILE).is_file():
        raise UserError(f"{project}: error: neither a generated module ({SPEC_FILE}) nor a lab project ({MARKER}). "
                        "Fix: pass a directory made by 'dbgscaffold new' or 'dbgscaffold lab start'.")
    return ShellProject(project, spec=load_project_spec(project))


def _guest(target: ShellProject, pair: KernelPair, workdir: Path) -> ShellGuest:
    """Build the module; for a lab, its student_files and tests/ go to HOME."""
    from ..lab.manifest import CHECK_LIB
    from ..lab.run import build_lab_module, series_of
    from .runner import build_module

    project, lab = target.path, target.lab
    if lab is None:
        built = build_module(project, pair.build_dir, pair.release, workdir)
        return ShellGuest(target.spec.module.name, built.ko, target.spec.module.root)
    ko, _debug, _seconds = build_lab_module(lab, project, pair, workdir)
    files = [FileSpec.from_path(f"{HOME}/{name}", project / name, 0o755) for name in lab.student_files if (project / name).is_file()]
    tests = project / "tests"
    if tests.is_dir():
        files += [FileSpec.from_path(f"{HOME}/tests/{p.name}", p) for p in sorted(tests.iterdir()) if p.is_file()]
    variables = [("SERIES", series_of(pair.version))]
    if lab.student_files:
        variables.append(("PROJECT", HOME))  # where the lab's checks look for them
    if (tests / CHECK_LIB).is_file():
        variables.append(("DBGS_CHECK_LIB", f"{HOME}/tests/{CHECK_LIB}"))
    return ShellGuest(lab.module, ko, lab.debugfs_root, tuple(files), tuple(variables))


def run_shell(project: Path | ShellProject, pair: KernelPair, accel: str = "auto", timeout: float | None = None) -> int:
    """Build, pack, boot with the terminal as the console; QEMU's exit status (124: timed out)."""
    target = project if isinstance(project, ShellProject) else shell_project(project)
    choice = probe_accel(accel)
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-shell-") as tmp:
        guest = _guest(target, pair, Path(tmp))
        initrd = shell_initrd(guest, Path(tmp) / "initrd.cpio")
        image = boot_image(pair.image, pair.release)
        machine = replace(fast_machine(image.path, initrd, accel=choice.accel), serial=(CONSOLE,))
        if shutil.which(machine.qemu) is None:
            raise EnvironmentProblem(f"error: '{machine.qemu}' is not installed. Fix: apt-get install qemu-system-x86.")
        return _run_attached(argv(machine), timeout)


def _run_attached(command: Sequence[str], timeout: float | None) -> int:
    """QEMU on our terminal (same process group: it must read the tty); always reaped,
    and the terminal's settings restored if QEMU did not get to do it."""
    saved = _termios()
    proc = subprocess.Popen(list(command), preexec_fn=_child_setup)
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
