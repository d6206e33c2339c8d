"""`dbgscaffold vm shell`: the test VM with the module loaded, a shell on the serial console.

The console is QEMU's stdio, so the user's terminal is the guest's ttyS0 (QEMU
puts a terminal in raw mode itself; ^C goes to the guest). Exiting the shell
returns from /init, which powers off; QEMU then exits. QEMU is killed if it
outlives this call (an optional timeout, an exception, ^C).
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from .images import KernelPair, boot_image
from .initramfs import APPLETS, FileSpec, build_initramfs, init_script
from .qemu import CONSOLE, _child_setup, argv, fast_machine, probe_accel

SHELL_APPLETS = APPLETS + ("setsid", "cttyhack", "vi", "less", "hexdump", "find", "basename", "dirname", "env", "id", "ps", "kill", "clear")


def shell_body(module: str, ko_guest: str, root: str) -> str:
    """What /init runs: load the module, cd into its debugfs root, an interactive shell."""
    rootq = shlex.quote(f"/sys/kernel/debug/{root}")
    return f"""echo 3 > /proc/sys/kernel/printk
if insmod {shlex.quote(ko_guest)}; then
    echo "dbgscaffold: {module} loaded; its files are in /sys/kernel/debug/{root} (exit the shell to power off)"
    cd {rootq} 2>/dev/null
else
    echo "dbgscaffold: insmod {module} failed; here is a shell anyway (exit to power off)"
fi
export PS1='[{module}] \\w # '
setsid cttyhack sh
"""


def run_shell(project: Path, pair: KernelPair, accel: str = "auto", timeout: float | None = None) -> int:
    """Build, pack, boot with the terminal as the console; QEMU's exit status."""
    from .runner import build_module, load_project_spec

    project = Path(project).resolve()
    spec = load_project_spec(project)
    choice = probe_accel(accel)
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-shell-") as tmp:
        built = build_module(project, pair.build_dir, pair.release, Path(tmp))
        ko_guest = f"/lib/modules/{built.ko.name}"
        initrd = build_initramfs(
            init_script(shell_body(spec.module.name, ko_guest, spec.module.root)),
            [FileSpec.from_path(ko_guest, built.ko, 0o644)],
            applets=SHELL_APPLETS,
        )
        image = boot_image(pair.image, pair.release)
        machine = replace(fast_machine(image.path, initrd, accel=choice.accel), serial=(CONSOLE,))
        proc = subprocess.Popen(argv(machine), preexec_fn=_child_setup)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
