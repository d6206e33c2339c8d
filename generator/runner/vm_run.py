"""`dbgscaffold vm run [DIR] -- CMD`: DIR's modules loaded in the test VM, CMD run in a copy
of DIR there, its output streamed, its exit status returned (virtme-ng's `--exec` habit, on
our VM: restored from the snapshot, the same kernels as `test`).

The payload is a run.sh of two numbered checks, as `test` runs them (so a crash, an oops
or a hang is judged and decoded the same way): load the modules in dependency order, then
CMD with stdin from /dev/null and stdout and stderr merged. Each output line comes back as
`# out: LINE`, the status as `# exit: N`. With --gdb the guest also says where each
module's sections lie (`# gdb: NAME SECTION ADDRESS`), for the add-symbol-file line.

Pure: command_script(), output_of(), exit_of(), gdb_command(). Edge: CommandChecks.prepare().
"""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..spec_model import quoted
from ..vm.agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT, pack_payload
from ..vm.images import KernelPair
from ..vm.initramfs import FileSpec
from .build import BuiltModule, build_modules
from .checks import GuestModule, render_script
from .execute import Prepared
from .project import ModuleProject

GUEST_PROJECT = f"{PAYLOAD_ROOT}/project"  # the copy of DIR, CMD's working directory
MAX_PROJECT_BYTES = 4 << 20  # the UART moves ~30 KB/s: sources and scripts, not build trees
_BUILD_OUTPUT = re.compile(r".*\.(o|ko|mod|mod\.c|a|cmd|order|symvers|tmp)$|modules\.order|Module\.symvers")
_OUT = "# out: "
_EXIT = re.compile(r"^# exit: (\d+)$")
_GDB = re.compile(r"^# gdb: (\S+) (\S+) (0x[0-9a-f]+)$")


def project_files(project: Path) -> list[tuple[Path, str]]:
    """(host file, path under DIR) of what goes into the guest: DIR's files but kbuild's
    output and dot-directories (.git, .tmp_*), up to MAX_PROJECT_BYTES."""
    out, total = [], 0
    for path in sorted(Path(project).rglob("*")):
        rel = path.relative_to(project)
        if not path.is_file() or any(p.startswith(".") for p in rel.parts) or _BUILD_OUTPUT.fullmatch(rel.name):
            continue
        total += path.stat().st_size
        if total > MAX_PROJECT_BYTES:
            break
        out.append((path, rel.as_posix()))
    return out


def command_script(modules: Sequence[GuestModule], command: str, gdb: bool) -> str:
    """The payload's run.sh: load the modules (load_module: a Fix line when one does not),
    then `command` in GUEST_PROJECT; the check fails when it exits non-zero."""
    load = "rm -f /tmp/.vm-run-loaded; " + "; ".join(f"{m.insmod()}" for m in modules)
    if gdb:  # every section the module has: add-symbol-file needs .text, and the data ones to read variables
        # one grep: a section file answers only a read at offset 0 (ash's read goes bytewise)
        load += "; " + "; ".join(
            f"grep -H . /sys/module/{m.name}/sections/.* 2>/dev/null | while IFS= read -r _l; do _s=${{_l##*/}}; "
            f"_dbgs_res \"# gdb: {m.name} ${{_s%%:*}} ${{_s#*:}}\"; done"
            for m in modules)
    load += "; : > /tmp/.vm-run-loaded"
    run = ("[ -e /tmp/.vm-run-loaded ] || { diag 'not run: the modules did not load'; exit 1; }; "
           f"cd {quoted(GUEST_PROJECT)} || exit 1; "
           "{ sh -c \"$VM_RUN_COMMAND\" </dev/null 2>&1; echo $? > /tmp/.vm-run-status; } "
           f"| while IFS= read -r _l || [ -n \"$_l\" ]; do _dbgs_res \"{_OUT}$_l\"; done; "
           "read -r _rc < /tmp/.vm-run-status; _dbgs_res \"# exit: $_rc\"; [ \"$_rc\" -eq 0 ]")
    names = " ".join(m.name for m in modules)
    return render_script("vm run: a command with the modules loaded", {"VM_RUN_COMMAND": command, "MODULES": names},
                         [(f"insmod {names}", load, ""), (check_name(command), run, "")])


def check_name(command: str) -> str:
    """The command's check, named by its first line: a result line is one line, and a '#'
    would start a KTAP directive (# SKIP)."""
    first = command.strip().splitlines()[0] if command.strip() else ""
    first = first.replace("#", "").strip()
    return f"run: {first[:60]}" + ("..." if len(first) > 60 or "\n" in command.strip() else "")


def output_of(line: str) -> str | None:
    """The command's own output in a result line, or None."""
    return line[len(_OUT):] if line.startswith(_OUT) else None


def exit_of(diagnostics: Sequence[str]) -> int | None:
    """The command's exit status from its check's diagnostics (None: it never finished). The
    last one: the guest's own line comes after all output (a lone CR in the output could
    make a line of its own that looks like one)."""
    for d in reversed(diagnostics):
        m = _EXIT.match("# " + d)
        if m:
            return int(m.group(1))
    return None


def gdb_section(line: str) -> tuple[str, str, str] | None:
    """(module, section, address) of a `# gdb:` result line."""
    m = _GDB.match(line)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def gdb_prefix(port: int, vmlinux: Path | None) -> str:
    """gdb attaching to the stub on `port`, with the kernel's symbols when there are some."""
    return shlex.join(["gdb", "-q", *([str(vmlinux)] if vmlinux else []), "-ex", f"target remote 127.0.0.1:{port}"])


def gdb_command(port: int, vmlinux: Path | None, ko: Path, sections: dict[str, str]) -> str:
    """The gdb command line that attaches to the guest with the module's symbols where it lies."""
    symbol_file = ["add-symbol-file", str(ko), sections[".text"]]
    for name in (".data", ".rodata", ".bss"):
        if name in sections:
            symbol_file += ["-s", name, sections[name]]
    return f"{gdb_prefix(port, vmlinux)} -ex {shlex.quote(' '.join(symbol_file))}"


def kernel_symbols(pair: KernelPair) -> Path | None:
    """A vmlinux with the kernel's symbols for gdb: the build tree's (a kernel of `kernel
    build`, Debian's 6.12 headers), else Debian's -dbg package's; None: the module's only."""
    for candidate in (Path(pair.build_dir) / "vmlinux", Path(f"/usr/lib/debug/boot/vmlinux-{pair.release}"),
                      Path(f"/usr/lib/debug/lib/modules/{pair.release}/vmlinux")):
        if candidate.is_file():
            return candidate
    return None


@dataclass
class CommandChecks:
    """The Checks of `vm run`: build, then a payload that loads the modules and runs `command`.
    With `gdb`, the unstripped modules are kept in the cache (`debug_kos`) for gdb to read."""

    project: ModuleProject
    command: str
    gdb: bool = False
    debug_kos: dict[str, Path] = field(default_factory=dict)

    def prepare(self, project: Path, pair: KernelPair, workdir: Path, check_timeout: float | None) -> Prepared:
        t0 = time.monotonic()
        built = build_modules(project, pair.build_dir, pair.release, workdir, self.project.test.modules)
        build_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        if self.gdb:
            self.debug_kos.update(keep_for_gdb(built.modules))
        modules = tuple(GuestModule(m.name, f"{PAYLOAD_ROOT}/{m.ko.name}", params)
                        for m, params in zip(built.modules, self.project.params(built, pair.release)))
        payload = pack_payload([
            *(FileSpec.from_path(g.ko, m.ko, 0o644) for g, m in zip(modules, built.modules)),
            FileSpec(PAYLOAD_SCRIPT, command_script(modules, self.command, self.gdb).encode(), 0o755),
            *(FileSpec.from_path(f"{GUEST_PROJECT}/{rel}", path, 0o755 if path.stat().st_mode & 0o111 else 0o644)
              for path, rel in project_files(project)),
        ])
        return Prepared(self.project.name, (f"insmod {' '.join(m.name for m in modules)}", check_name(self.command)), payload,
                        build_seconds, time.monotonic() - t0, built)


GDB_KEEP_SECONDS = 7 * 86400  # the modules of older --gdb runs are removed


def keep_for_gdb(modules: Sequence[BuiltModule]) -> dict[str, Path]:
    """The unstripped modules copied where they outlive the run (<cache>/gdb/<run>/), for gdb
    to read; one directory per run (two runs of one module do not share a file)."""
    root = paths.cache_dir() / "gdb"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.is_dir() and time.time() - old.stat().st_mtime > GDB_KEEP_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    where = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=root))
    kept = {}
    for m in modules:
        kept[m.name] = where / m.debug_ko.name
        shutil.copyfile(m.debug_ko, kept[m.name])
    return kept
