"""SystemTap for the labs: compile a script on the host for a lab kernel, run it in the guest.

The host translates and builds (`stap -p4 -r RELEASE -m NAME -R RUNTIME`,
Debian's `systemtap` package and the kernel's headers); the guest only loads
the module with `staprun`, which execs `stapio` to read the module's output
through relay files in debugfs. Neither tool exists in the busybox guest, so
guest_files() packs them with their shared libraries and the dynamic loader
into the payload, and guest_setup() is the shell that makes them runnable.

Debian bookworm's SystemTap 4.8 predates the lab kernels' APIs: 6.1.1xx got
task_work_cancel_func() by a stable backport, and 6.12 lost strlcpy(),
asm/unaligned.h, do_each_thread() and more. prepared_runtime() applies a
compatibility patch to a cached copy of the runtime; every change in it is
guarded by a STAPCONF_DBGS_* macro decided by probing the kernel's headers
(never its version string), written into the copy's linux/dbgscaffold_compat.h.
The patch, the probes and the extra kbuild flags are data:
module_templates/labs/systemtap/runtime-patches/ (its README.md).

Pure: parse_stap_version(), probe_features(), compat_header(), parse_ldd(),
guest_setup(), stap_errors(). Edges: find_stap(), prepared_runtime(),
compile_script(), guest_files().

This module does not import the rest of dbgscaffold.lab (it lands on its own).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import EXIT_BUILD, EnvironmentProblem, UserError
from ..paths import cache_dir
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
    from ..render import templates_root

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
        raise EnvironmentProblem(f"error: 'stap' is not installed; the systemtap lab compiles scripts with it. Fix: apt-get install {STAP_PACKAGE} {RUNTIME_PACKAGE}.")
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


@dataclass(frozen=True)
class Compiled:
    ko: Path
    seconds: float
    output: str  # stap's stdout + stderr (warnings)
    runtime: Path
    features: tuple[str, ...]


def compile_module(script: str | Path, release: str, module_name: str, workdir: Path, timeout: float = COMPILE_TIMEOUT,
                   extra_args: Sequence[str] = (), root: Path = MODULES_ROOT) -> Compiled:
    """compile_script() with its timing, stap's warnings and the runtime used."""
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
        script_path = script.resolve()
        shown = str(script)
    else:
        script_path = workdir / f"{module_name}.stp"
        script_path.write_text(script)
        shown = script_path.name
    argv = [str(stap), "-p4", "-r", release, "-m", module_name, "-R", str(runtime)]
    if data.kcflags and runtime != STOCK_RUNTIME:
        argv += ["-B", "KCFLAGS=" + " ".join(data.kcflags)]
    argv += [*extra_args, str(script_path)]
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise StapFailed(f"{shown}: error: stap did not finish within {timeout:.0f} s for {release}.") from None
    seconds = time.monotonic() - t0
    output = r.stdout + r.stderr
    ko = workdir / f"{module_name}.ko"
    if r.returncode != 0 or not ko.is_file():
        lines = stap_errors(output)
        raise StapFailed(f"{shown}: error: stap failed for {release} (exit {r.returncode}):\n" + "\n".join(f"  {x}" for x in lines), output)
    return Compiled(ko, seconds, output, runtime, features)


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


def guest_files(dest_root: str) -> list[FileSpec]:
    """staprun, stapio, their shared libraries and the dynamic loader, for a
    payload under `dest_root` (e.g. agent.PAYLOAD_ROOT + "/stap"): bin/staprun,
    bin/stapio, lib/*. Source guest_setup(dest_root) before using $STAPRUN."""
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
