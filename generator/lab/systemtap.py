"""SystemTap for the labs: compile a script on the host for a lab kernel, run it in the guest.

The host translates and builds (`stap -p4 -r RELEASE -m NAME -R RUNTIME`,
Debian's `systemtap` package and the kernel's headers); the guest only loads
the module with `staprun`, which execs `stapio` to read the module's output
through relay files in debugfs. Neither tool exists in the busybox guest, so
staprun_files() packs them with their shared libraries and the dynamic loader
(~3.3 MB) and guest_setup() is the shell that makes them runnable. They are
shared by every run: guest_files(pair), the kind's hook, bakes them into the
agent's initramfs under GUEST_ROOT (/opt/dbgscaffold/stap), so a payload
carries only the compiled modules, the checks and run.sh (~100 KB, a few
seconds over the UART) and a restored snapshot (its own, keyed by that
initramfs) works.

Debian bookworm's SystemTap 4.8 predates the lab kernels' APIs: 6.1.1xx got
task_work_cancel_func() by a stable backport, and 6.12 lost strlcpy(),
asm/unaligned.h, do_each_thread() and more. prepared_runtime() applies a
compatibility patch to a cached copy of the runtime; every change in it is
guarded by a STAPCONF_DBGS_* macro decided by probing the kernel's headers
(never its version string), written into the copy's linux/dbgscaffold_compat.h.
The patch, the probes and the extra kbuild flags are data:
module_templates/labs/systemtap/runtime-patches/ (its README.md).

Debian's headers ship no symbol table (/boot/System.map-RELEASE is a stub)
and stap 4.8 refuses a kprobe.function("NAME") it cannot find there, although
it registers such probes by name: build_tree() gives stap (`-r DIR`) the
headers plus a System.map naming the script's probed functions.

The lab kind (docs/labs-format.md, "Lab kinds"): dbgscaffold.lab.run calls
plan(lab, hidden) and prepare(lab, project, pair, workdir, hidden,
check_timeout) -> runner.Prepared; the project's scripts ([systemtap] scripts
in lab.toml) become $STAP_KO_DIR/NAME.ko in the guest, the checks run them with
$STAPRUN. Importing this module imports nothing else of dbgscaffold.lab.

Pure: parse_stap_version(), probe_features(), compat_header(), parse_ldd(),
kprobe_functions(), symbol_map(), guest_setup(), stap_errors(),
payload_script(). Edges: find_stap(), prepared_runtime(), build_tree(),
compile_script() / compile_module() / compile_scripts(), staprun_files(), guest_files(),
lab_payload_files(), prepare().
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import sandbox
from ..errors import EXIT_BUILD, EnvironmentProblem, UserError
from ..paths import cache_dir, templates_root
from ..untrusted_build import Untrusted, unpack
from ..vm.initramfs import FileSpec

STAP_PACKAGE = "systemtap"  # stap, the translator
RUNTIME_PACKAGE = "systemtap-runtime"  # staprun and stapio
STOCK_RUNTIME = Path("/usr/share/systemtap/runtime")
STAPIO = Path("/usr/lib/systemtap/stapio")  # compiled into staprun; SYSTEMTAP_STAPIO overrides it
MODULES_ROOT = Path("/lib/modules")
COMPAT_HEADER = "linux/dbgscaffold_compat.h"  # included by the patched linux/runtime.h
COMPILE_TIMEOUT = 900.0  # seconds; ~30 s on an idle 2-core machine, much more when shared
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,54}$")  # stap -m: a C identifier, <= 55 chars


class StapFailed(UserError):
    """stap could not translate or build the script (exit 3, like a kbuild failure)."""

    exit_code = EXIT_BUILD

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


# ---------------------------------------------------------------- the data


def patches_dir() -> Path:
    return templates_root() / "labs" / "systemtap" / "runtime-patches"


@dataclass(frozen=True)
class Feature:
    """A kernel API difference the patched runtime handles, and how to detect it."""

    macro: str
    header: str  # relative to the headers' directory: include/linux/task_work.h
    pattern: str
    present: bool  # defined when the pattern matches (True) or when it does not (False)
    why: str


@dataclass(frozen=True)
class CompatData:
    patches: dict[str, str]  # stap version -> patch file name
    kcflags: tuple[str, ...]
    features: tuple[Feature, ...]


def load_compat(directory: Path | None = None) -> CompatData:
    directory = Path(directory or patches_dir())
    with open(directory / "features.toml", "rb") as f:
        doc = tomllib.load(f)
    features = []
    for item in doc.get("feature", []):
        if ("present" in item) == ("absent" in item):
            raise ValueError(f"{directory / 'features.toml'}: feature {item.get('macro')}: give exactly one of present, absent")
        features.append(Feature(item["macro"], item["header"], item.get("present", item.get("absent")), "present" in item, item.get("why", "")))
    return CompatData(dict(doc.get("patches", {})), tuple(doc.get("kcflags", ())), tuple(features))


# ---------------------------------------------------------------- pure


def parse_stap_version(text: str) -> str:
    """`stap -V`'s first line -> "4.8" (None-safe: raises ValueError on anything else)."""
    m = re.search(r"\(version ([0-9][0-9.]*)", text)
    if not m:
        raise ValueError(f"not stap -V output: {text.strip()[:80]!r}")
    return m.group(1).rstrip(".")


def probe_features(features: Sequence[Feature], read: Callable[[str], str | None]) -> tuple[str, ...]:
    """The macros to define for a kernel whose header text `read(relpath)` returns
    (None: no such header: the feature is left undefined)."""
    out = []
    for f in features:
        text = read(f.header)
        if text is None:
            continue
        if (re.search(f.pattern, text) is not None) == f.present:
            out.append(f.macro)
    return tuple(out)


def compat_header(macros: Sequence[str], release: str = "") -> str:
    lines = ["/* Written by dbgscaffold: kernel features probed from the headers" + (f" of {release}" if release else "") + ". */"]
    lines += [f"#define {m} 1" for m in sorted(macros)]
    return "\n".join(lines) + "\n"


def parse_ldd(text: str) -> tuple[list[Path], Path | None]:
    """`ldd BINARY` -> (the shared libraries' paths, the dynamic loader's path)."""
    libs: list[Path] = []
    loader = None
    for line in text.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (")[0].strip()
            if target.startswith("/"):
                libs.append(Path(target))
            elif "not found" in target:
                raise EnvironmentProblem(f"error: a library staprun needs is missing: {line}. Fix: apt-get install --reinstall {RUNTIME_PACKAGE}.")
        elif line.startswith("/"):
            loader = Path(line.split(" (")[0].strip())
    return libs, loader


def stap_errors(output: str, limit: int = 25) -> list[str]:
    """The lines of stap's output that say what went wrong (semantic/parse errors,
    compiler errors), or its last lines if none is recognisable."""
    keep = []
    for line in output.splitlines():
        s = line.strip()
        if not s:
            continue
        if re.search(r"\berror\b|^ERROR|^WARNING: kbuild|Pass [1-5]: .*failed|^\s*source:|^\s*\^", s, re.I) and "all warnings being treated as errors" not in s:
            keep.append(line.rstrip())
    if not keep:
        keep = [x.rstrip() for x in output.strip().splitlines()[-limit:]]
    return keep[:limit]


_KPROBE_FUNCTION = re.compile(r'\bkprobe\s*\.\s*function\s*\(\s*"([^"]*)"\s*\)')
_STAP_COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*|#[^\n]*', re.S)
SYMBOLS_STUB = "The real System.map is in"  # Debian's /boot/System.map-RELEASE


def kprobe_functions(script: str) -> list[str]:
    """The function names of a script's kprobe.function("NAME") probes, in order, once each
    (comments ignored; a string containing a comment marker is rare enough here)."""
    seen: list[str] = []
    for name in _KPROBE_FUNCTION.findall(_STAP_COMMENT.sub(" ", script)):
        if name not in seen:
            seen.append(name)
    return seen


def symbol_map(names: Sequence[str]) -> str:
    """A System.map naming `names` as kernel text. stap 4.8 checks kprobe.function
    names against the symbol table but registers the probes by name (symbol_name,
    address 0): the kernel resolves them when the module loads, so the addresses
    here are placeholders, never used."""
    marks = ["_text", "_stext"] + [n for n in names if n not in ("_text", "_stext", "_etext")] + ["_etext"]
    return "".join(f"{0xffffffff81000000 + 16 * i:016x} T {n}\n" for i, n in enumerate(marks))


def guest_setup(dest_root: str) -> str:
    """Shell lines (busybox ash, run as root in the guest) that make the packed
    staprun runnable: the loader at the path the binaries name (/lib64), the
    libraries on LD_LIBRARY_PATH, stapio where staprun looks for it
    ($SYSTEMTAP_STAPIO) and staprun where stapio looks for it to unload the
    module ($SYSTEMTAP_STAPRUN, else /usr/bin/staprun), debugfs mounted for the relay files. Then
    `$STAPRUN -o FILE MODULE.ko` (or plain, output on stdout) runs a module."""
    d = shlex.quote(dest_root)
    return "\n".join([
        f"STAP_ROOT={d}",
        'mkdir -p /lib64 && ln -sf "$STAP_ROOT/lib/ld-linux-x86-64.so.2" /lib64/ld-linux-x86-64.so.2',
        'LD_LIBRARY_PATH="$STAP_ROOT/lib"; STAPRUN="$STAP_ROOT/bin/staprun"',
        # stapio is exec'd by staprun, and execs `staprun -d` to unload the module at the end
        'SYSTEMTAP_STAPIO="$STAP_ROOT/bin/stapio"; SYSTEMTAP_STAPRUN="$STAPRUN"',
        "export LD_LIBRARY_PATH SYSTEMTAP_STAPIO SYSTEMTAP_STAPRUN STAPRUN",
        "grep -q ' /sys/kernel/debug debugfs' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug",
    ]) + "\n"


# ---------------------------------------------------------------- edges


def find_stap() -> Path:
    """The stap translator, or an EnvironmentProblem (exit 4) naming the package."""
    found = shutil.which("stap")
    if not found:
        raise EnvironmentProblem(f"error: 'stap' is not installed; the systemtap lab compiles scripts with it. "
                                 f"Fix: apt-get install {STAP_PACKAGE} {RUNTIME_PACKAGE}.")
    return Path(found)


def find_staprun() -> tuple[Path, Path]:
    """staprun and the stapio it execs, or an EnvironmentProblem naming the package."""
    staprun = shutil.which("staprun")
    if not staprun or not STAPIO.is_file():
        missing = "staprun" if not staprun else str(STAPIO)
        raise EnvironmentProblem(f"error: {missing} is not installed; the guest runs SystemTap modules with it. Fix: apt-get install {RUNTIME_PACKAGE}.")
    return Path(staprun), STAPIO


def stap_version(stap: Path | None = None) -> str:
    stap = stap or find_stap()
    r = subprocess.run([str(stap), "-V"], capture_output=True, text=True, timeout=60)
    try:
        return parse_stap_version(r.stdout + r.stderr)
    except ValueError:
        raise EnvironmentProblem(f"{stap}: error: cannot tell its version from 'stap -V': {(r.stdout + r.stderr).strip()[:200]}") from None


def headers_dirs(release: str, root: Path = MODULES_ROOT) -> list[Path]:
    """The kernel's build directory and, on Debian, the common directory its
    Makefile includes (where most of include/ lives)."""
    build = Path(root) / release / "build"
    if not (build / "Makefile").is_file():
        raise EnvironmentProblem(f"{build}: error: no kernel headers for {release}. Fix: apt-get install linux-headers-{release}.")
    dirs = [build.resolve()]
    try:
        m = re.match(r"^\s*include\s+(\S+)/Makefile\s*$", (build / "Makefile").read_text(errors="replace").strip())
    except OSError:
        m = None
    if m and Path(m.group(1)).is_dir():
        dirs.append(Path(m.group(1)))
    return dirs


def kernel_features(release: str, data: CompatData | None = None, root: Path = MODULES_ROOT) -> tuple[str, ...]:
    data = data or load_compat()
    dirs = headers_dirs(release, root)

    def read(rel: str) -> str | None:
        for d in dirs:
            p = d / rel
            if p.is_file():
                return p.read_text(errors="replace")
        return None

    return probe_features(data.features, read)


def prepared_runtime(stap_version: str, release: str, source: Path = STOCK_RUNTIME, cache: Path | None = None,
                     data: CompatData | None = None, root: Path = MODULES_ROOT) -> Path:
    """A runtime directory for `stap -R` that builds for `release`: a cached copy of
    `source` with this stap version's compatibility patch applied and the
    features probed from the kernel's headers in linux/dbgscaffold_compat.h.
    A version without a patch gets `source` itself. Written once, atomically."""
    data = data or load_compat()
    patch_name = data.patches.get(stap_version)
    if patch_name is None:
        return Path(source)
    patch = patches_dir() / patch_name
    macros = kernel_features(release, data, root)
    header = compat_header(macros)
    if not (Path(source) / "runtime.h").is_file():
        raise EnvironmentProblem(f"{source}: error: no SystemTap runtime here. Fix: apt-get install {STAP_PACKAGE}.")
    key = hashlib.sha256(patch.read_bytes() + b"\0" + header.encode() + b"\0" + str(Path(source).resolve()).encode()).hexdigest()[:16]
    target = (cache or cache_dir()) / "systemtap" / f"runtime-{stap_version}-{key}"
    if (target / COMPAT_HEADER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        work = tmp / "runtime"
        shutil.copytree(source, work, symlinks=True)
        r = subprocess.run(["patch", "-p1", "--batch", "--forward", "--silent", "-d", str(work), "-i", str(patch)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise EnvironmentProblem(f"{patch}: error: does not apply to {source} (is it stap {stap_version}'s?):\n{(r.stdout + r.stderr).strip()}")
        (work / COMPAT_HEADER).write_text(compat_header(macros, release))
        try:
            os.replace(work, target)
        except OSError:  # another process made it first
            if not (target / COMPAT_HEADER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def real_symbol_map(release: str, boot: Path = Path("/boot")) -> Path | None:
    """The kernel's real System.map, if installed (Debian's /boot one is a stub
    naming linux-image-RELEASE-dbg)."""
    for p in (Path(boot) / f"System.map-{release}", Path("/usr/lib/debug/boot") / f"System.map-{release}"):
        try:
            with open(p, errors="replace") as f:
                head = f.read(200)
        except OSError:
            continue
        if head and SYMBOLS_STUB not in head:
            return p
    return None


def build_tree(release: str, names: Sequence[str], cache: Path | None = None, root: Path = MODULES_ROOT) -> Path:
    """A kernel build tree for `stap -r DIR`: symlinks to every entry of the
    headers' build directory plus a System.map naming `names` (symbol_map()).
    Cached per release and name set; written atomically."""
    build = headers_dirs(release, root)[0]
    text = symbol_map(names)
    key = hashlib.sha256(f"{build}\0{text}".encode()).hexdigest()[:16]
    target = (cache or cache_dir()) / "systemtap" / f"tree-{release}-{key}"
    if (target / "System.map").is_file():
        target.chmod(0o755)  # older trees were 0700: the sandbox's nobody could not read them
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    tmp.chmod(0o755)  # symlinks to the headers: nothing secret, and stap in the sandbox reads it as nobody
    try:
        for entry in sorted(os.listdir(build)):
            if entry != "System.map":
                os.symlink(build / entry, tmp / entry)
        (tmp / "System.map").write_text(text)
        try:
            os.replace(tmp, target)
        except OSError:  # another process made it first
            if not (target / "System.map").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Compiled:
    ko: Path
    seconds: float
    output: str  # stap's stdout + stderr (warnings)
    runtime: Path
    features: tuple[str, ...]


def compile_module(script: str | Path, release: str, module_name: str, workdir: Path, timeout: float = COMPILE_TIMEOUT,
                   extra_args: Sequence[str] = (), root: Path = MODULES_ROOT, untrusted: Untrusted | None = None) -> Compiled:
    """compile_script() with its timing, stap's warnings and the runtime used. `untrusted`
    (sandboxed): stap translates and builds a copy of the script inside the sandbox,
    without stap's cache (slower), and only the .ko comes out."""
    if not _MODULE_NAME.match(module_name):
        raise UserError(f"error: {module_name!r} is not a SystemTap module name (letters, digits and _, at most 55, not starting with a digit).")
    stap = find_stap()
    version = stap_version(stap)
    headers_dirs(release, root)  # names the package if the headers are missing
    data = load_compat()
    runtime = prepared_runtime(version, release, data=data, root=root)
    features = kernel_features(release, data, root) if runtime != STOCK_RUNTIME else ()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(script, Path):
        if untrusted is not None and (script.is_symlink() or not script.is_file()):
            # as root we would read (and stap quote) whatever it points at
            raise StapFailed(f"{script}: error: not a regular file (a symlink?); refused. Fix: submit the script itself.")
        script_path = script.resolve()
        shown = str(script)
    else:
        script_path = workdir / f"{module_name}.stp"
        script_path.write_text(script)
        shown = script_path.name
    text = script_path.read_text(errors="replace")
    target = release
    if real_symbol_map(release) is None:  # Debian: no symbol table; name the probed functions
        names = kprobe_functions(text)
        wild = [n for n in names if any(c in n for c in "*?[")]
        if wild:
            raise StapFailed(f"{shown}: error: kprobe.function(\"{wild[0]}\"): a wildcard needs the kernel's symbol table, "
                             f"which {release} does not ship (/boot/System.map-{release} is a stub). Fix: name the function, "
                             f"or apt-get install linux-image-{release}-dbg.")
        target = str(build_tree(release, names, root=root))
    argv = [str(stap), "-p4", "-r", target, "-m", module_name, "-R", str(runtime)]
    if data.kcflags and runtime != STOCK_RUNTIME:
        argv += ["-B", "KCFLAGS=" + " ".join(data.kcflags)]
    argv += [*extra_args, str(script_path)]
    t0 = time.monotonic()
    ko = workdir / f"{module_name}.ko"
    if untrusted is not None and untrusted.sandboxed:
        returncode, output = _sandboxed_stap(argv, script_path, Path(target), runtime, ko, timeout, untrusted)
    else:
        try:
            r = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise StapFailed(f"{shown}: error: stap did not finish within {timeout:.0f} s for {release}.") from None
        returncode, output = r.returncode, r.stdout + r.stderr
    seconds = time.monotonic() - t0
    if returncode != 0 or not ko.is_file():
        lines = stap_errors(output)
        raise StapFailed(f"{shown}: error: stap failed for {release} (exit {returncode}):\n" + "\n".join(f"  {x}" for x in lines), output)
    return Compiled(ko, seconds, output, runtime, features)


def _sandboxed_stap(argv: list[str], script: Path, target: Path, runtime: Path, ko: Path, timeout: float,
                    how: Untrusted) -> tuple[int | None, str]:
    """stap in the sandbox on a copy of `script`; the .ko comes back on the result pipe into `ko`.
    (exit status or None when stopped, stap's output with the copy's path put back)."""
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-stap-") as tmp:
        staged = Path(tmp) / "in"
        staged.mkdir(mode=0o755)
        copy = staged / script.name
        copy.write_bytes(script.read_bytes())
        copy.chmod(0o644)
        inside = f"{sandbox.INPUTS}/stp/{script.name}"
        command = " ".join(shlex.quote(a) for a in [*argv[:-1], inside])
        limits = dataclasses.replace(how.limits, wall_seconds=min(how.limits.wall_seconds, timeout))
        ran = sandbox.run(["sh", "-c", f"{command} 3>&-; rc=$?; [ -f {shlex.quote(ko.name)} ] && tar -cf - {shlex.quote(ko.name)} >&3; exit $rc"],
                          [sandbox.Input(staged, f"{sandbox.INPUTS}/stp"), *sandbox.shown([target, runtime], how.hide)], limits, how.hide)
    output = ran.output.replace(inside, str(script)) + (f"\nerror: stopped stap in the sandbox: {ran.stopped}" if ran.stopped else "")
    unpack(ran.result, ko.parent, lambda name: str(name) == ko.name)  # none: the caller says stap failed
    return ran.returncode, output


def compile_script(script: str | Path, release: str, module_name: str, workdir: Path, timeout: float = COMPILE_TIMEOUT) -> Path:
    """Translate and build `script` (its text, or a Path to a .stp file) into
    workdir/NAME.ko for kernel `release`: `stap -p4 -r RELEASE -m NAME -R
    RUNTIME`. stap's own cache (~/.systemtap/cache) makes a repeat instant.
    Raises StapFailed (exit 3) with stap's messages, EnvironmentProblem (exit 4)
    when stap or the headers are missing."""
    return compile_module(script, release, module_name, workdir, timeout).ko


def _ldd(binary: Path) -> tuple[list[Path], Path | None]:
    r = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise EnvironmentProblem(f"{binary}: error: ldd failed: {(r.stdout + r.stderr).strip()}")
    return parse_ldd(r.stdout)


def staprun_files(dest_root: str) -> list[FileSpec]:
    """staprun, stapio, their shared libraries and the dynamic loader, for the
    guest under `dest_root` (GUEST_ROOT): bin/staprun, bin/stapio, lib/*.
    Source guest_setup(dest_root) before using $STAPRUN."""
    staprun, stapio = find_staprun()
    dest_root = dest_root.rstrip("/")
    files = [FileSpec.from_path(f"{dest_root}/bin/staprun", staprun, 0o755), FileSpec.from_path(f"{dest_root}/bin/stapio", stapio, 0o755)]
    libs: dict[str, Path] = {}
    loader = None
    for binary in (staprun, stapio):
        found, ld = _ldd(binary)
        loader = loader or ld
        for lib in found:
            libs.setdefault(lib.name, lib)
    if loader is None:
        raise EnvironmentProblem(f"{staprun}: error: ldd names no dynamic loader; cannot pack staprun for the guest.")
    libs[loader.name] = loader
    for name, path in sorted(libs.items()):
        files.append(FileSpec(f"{dest_root}/lib/{name}", path.resolve().read_bytes(), 0o755))
    return files


# ---------------------------------------------------------------- a lab's payload

GUEST_ROOT = "/opt/dbgscaffold/stap"  # staprun, stapio, libraries: in the agent initramfs (guest_files), not the payload
GUEST_KO_DIR = "/run/payload/ko"  # one module per script: hello.stp -> hello.ko ($STAP_KO_DIR); NAME.err if it did not build
GUEST_CHECK_DIR = "/run/payload/checks"
CHECK_TIMEOUT = 180  # seconds, per check, in the guest (the checks bound staprun themselves)


def payload_script(checks: Sequence[tuple[str, str]], series: str, check_timeout: int = CHECK_TIMEOUT,
                   stap_root: str = GUEST_ROOT, ko_dir: str = GUEST_KO_DIR) -> str:
    """run.sh for the guest agent: staprun made runnable, then every check
    (name, guest path) as one KTAP result whose own results are a subtest, like
    a user's tests/*.sh under `dbgscaffold test`. Checks see $STAPRUN,
    $STAP_KO_DIR and $SERIES."""
    from ..runner.checks import render_script

    return render_script(
        "the checks of a SystemTap lab on one kernel", {"STAP_KO_DIR": ko_dir, "SERIES": series},
        [(name, "", path) for name, path in checks], check_timeout, prologue=(guest_setup(stap_root).rstrip(),),
    )


def compile_scripts(scripts: Sequence[Path], release: str, workdir: Path,
                    untrusted: Untrusted | None = None) -> tuple[list[Path], dict[str, str], float]:
    """Compile each script into workdir/NAME.ko (NAME = its stem). Returns the
    modules, stap's message for each script that failed (by name) and the
    seconds spent. Raises StapFailed when none builds, EnvironmentProblem
    when stap or the headers are missing."""
    kos, errors, seconds = [], {}, 0.0
    for script in scripts:
        t0 = time.monotonic()
        try:
            kos.append(compile_module(Path(script), release, Path(script).stem, workdir, untrusted=untrusted).ko)
        except StapFailed as exc:
            errors[Path(script).stem] = str(exc)
        seconds += time.monotonic() - t0
    if scripts and not kos:
        raise StapFailed("\n".join(errors.values()))
    return kos, errors, seconds


def lab_payload_files(kos: Sequence[Path], checks: Sequence[tuple[str, Path]], series: str,
                      errors: dict[str, str] | None = None, check_timeout: int = CHECK_TIMEOUT) -> list[FileSpec]:
    """The payload's files: the modules (and NAME.err for a script that did not
    build), the checks (name, host path) under checks/, run.sh. For
    agent.pack_payload(); staprun is in the agent initramfs (guest_files())."""
    from ..vm.agent import PAYLOAD_SCRIPT

    files = [FileSpec.from_path(f"{GUEST_KO_DIR}/{Path(k).name}", Path(k), 0o644) for k in kos]
    files += [FileSpec(f"{GUEST_KO_DIR}/{name}.err", text.encode(), 0o644) for name, text in sorted((errors or {}).items())]
    plan = [(name, f"{GUEST_CHECK_DIR}/{name}") for name, _ in checks]
    files += [FileSpec.from_path(guest, Path(path), 0o755) for (_, guest), (_, path) in zip(plan, checks)]
    files.append(FileSpec(PAYLOAD_SCRIPT, payload_script(plan, series, check_timeout).encode(), 0o755))
    return files


# ---------------------------------------------------------------- the lab kind (dbgscaffold.lab.run)


def guest_files(pair=None) -> list[FileSpec]:
    """The kind's shared guest files (docs/labs-format.md, "Lab kinds"): staprun,
    stapio and their libraries under GUEST_ROOT, baked into the agent initramfs
    by runner.run_prepared(guest_files=). The same for every kernel."""
    return staprun_files(GUEST_ROOT)


def lab_scripts(lab) -> list[str]:
    """The scripts a systemtap lab's project holds: [systemtap] scripts in
    lab.toml, else every solution/*.stp."""
    listed = (getattr(lab, "extra", None) or {}).get("systemtap", {}).get("scripts")
    if listed:
        return [str(x) for x in listed]
    return sorted(p.name for p in (Path(lab.root) / "solution").glob("*.stp"))


def plan(lab, hidden: bool) -> list:
    """The lab's checks in run order (no task-0 insmod/rmmod: staprun loads and
    unloads each module inside the checks)."""
    from .run import PlannedCheck

    out = []
    for c in lab.run_checks(hidden):
        title = f"task {c.task}: {c.title}" if c.task else c.title
        out.append(PlannedCheck(title, c.task, c.hidden, c.name, f"{GUEST_CHECK_DIR}/{c.name}"))
    return out


def prepare(lab, project: Path, pair, workdir: Path, hidden: bool, check_timeout: float | None = None,
            untrusted: Untrusted | None = None):
    """runner.Prepared for one project of a `kind = "systemtap"` lab: its
    scripts compiled for `pair`, the lab's checks, staprun. A script that does
    not build fails the checks that run it (with stap's message); none
    building is a build failure (StapFailed, exit 3). `untrusted`: stap runs in
    the sandbox (lab grade, --untrusted).

    The payload holds the modules, the checks and run.sh (~100-200 KB); staprun
    and its ~3.3 MB of libraries are guest_files(), in the agent's initramfs."""
    from ..runner.execute import Prepared
    from ..vm.agent import pack_payload

    project = Path(project)
    scripts = [project / name for name in lab_scripts(lab)]
    missing = [p.name for p in scripts if not p.is_file()]
    present = [p for p in scripts if p.is_file()]
    kos, errors, build_seconds = compile_scripts(present, pair.release, Path(workdir) / "stap", untrusted)
    for name in missing:
        errors[Path(name).stem] = f"{project / name}: error: no such file"
    t0 = time.monotonic()
    planned = plan(lab, hidden)
    checks = [(c.name, c.path) for c in lab.run_checks(hidden)]
    series = ".".join(str(v) for v in pair.version[:2])
    timeout = max(CHECK_TIMEOUT, math.ceil(check_timeout or 0))
    payload = pack_payload(lab_payload_files(kos, checks, series, errors, timeout))
    return Prepared(lab.id, tuple(c.name for c in planned), payload, build_seconds, time.monotonic() - t0)
