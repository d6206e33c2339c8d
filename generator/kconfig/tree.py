"""The kernel's Kconfig tree: find it, extract it, parse it (cached), load a .config.

API (all paths may be str or Path):

    find_source_tree(version, srctree=None, arch="x86") -> SourceTree
        The tree for a kernel version ("6.1", "6.1.192", (6, 1, 192), a
        KernelVersion): `srctree` checked and used in place when given,
        else Debian's /usr/src/linux-source-<major.minor>.tar.* extracted
        (only what kconfiglib reads, ~22 MB) into
        cache_dir()/kconfig-trees/<tarball>-<size>-<mtime>/.
    check_srctree(path, arch="x86") -> SourceTree      UserError naming what is missing
    find_source_tarball(version) -> Path               EnvironmentProblem if none
    version_from_config(path) -> KernelVersion | None  from "# Linux/x86 6.1.192 Kernel Configuration"
    load_tree(srctree, arch="x86", config=None, use_cache=True) -> CompatKconfig
        Parsed through the compat layer, with the environment kconfiglib
        needs set only for the parse.  Parse failures raise a
        KconfigTreeError (a UserError with .file and .line) so the caller
        can fall back to the flat analysis: KconfigSyntaxUnsupported for
        syntax kconfiglib cannot read, KconfigToolMissing (exit code 4)
        when the tree's own checks find no compiler.
        `kconf.load_info` says whether the parse came from the cache and how
        long it took; `kconf.config_load` holds the ConfigLoad when `config`
        was given.
    load_config(kconf, path) -> ConfigLoad             warnings captured
    fresh_copy(kconf) -> CompatKconfig                 same tree, no .config loaded
    clone(kconf) -> CompatKconfig                      same tree and user values
    menu_order(kconf) -> dict[str, int]                symbol -> position in menuconfig
    clear_parsed_cache() -> int

Parsed trees are pickled under cache_dir()/kconfig-parsed/.  An entry is
found by a key over what changes evaluation but is cheap to check (srctree
path, arch, the variables kconfiglib sees, the size and mtime of the tools
the macros run, kconfiglib and compat versions) and is used only if every
Kconfig file the parse read still has the same content: same size and
mtime, or else the same sha256 (git's index trick: a warm load stats
1,500 files instead of hashing 10 MB).  Not covered: host
state the macros probe beyond the tools themselves (e.g. installing gcc
plugin headers later); `use_cache=False` or clear_parsed_cache() then.
Unpickling runs code, so an entry is read only when paths.trusted() says no
other user could have written it (the cache is ours, 0700, nothing in the
chain writable by others); otherwise the tree is parsed again.

Not thread-safe: the parse sets os.environ for its duration.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import kconfiglib

from ..errors import EXIT_ENVIRONMENT, EnvironmentProblem, UserError
from ..kernels import makefile_version_fields
from ..paths import cache_dir, trusted
from .compat import COMPAT_VERSION, CompatKconfig

SOURCE_DIRS = (Path("/usr/src"),)
# GNU tar patterns, relative to the tarball's top directory.  '*' crosses '/'
# only in the second group.  scripts/ and arch/*/tools/ hold what the
# $(shell,...) macros run (cc-version.sh, gcc-*-has-stack-protector.sh...).
_TOP_LEVEL = ("Makefile", "scripts", "arch/*/tools")
_ANYWHERE = ("Kconfig*",)

_SRCARCH = {"x86_64": "x86", "i386": "x86", "sparc32": "sparc", "sparc64": "sparc", "parisc64": "parisc", "sh64": "sh", "um": "um"}
# Tools the Kconfig macros run; their binaries are part of the cache key.
_TOOLS = ("CC", "LD", "AR", "NM", "OBJCOPY", "RUSTC", "BINDGEN", "PAHOLE", "PYTHON3")
_DEFAULT_TOOLS = {"CC": "gcc", "LD": "ld", "AR": "ar", "NM": "nm", "OBJCOPY": "objcopy", "RUSTC": "rustc", "BINDGEN": "bindgen",
                  "PAHOLE": "pahole", "PYTHON3": "python3"}
# Unset would also do, but the kernel's Makefile passes them empty.
_EMPTY_VARS = ("CLANG_FLAGS", "USERCFLAGS", "USERLDFLAGS", "CROSS_COMPILE_COMPAT")
# Variables that would change kconfiglib's behaviour if inherited.
_SCRUB = ("KCONFIG_WARN_UNDEF", "KCONFIG_STRICT", "KCONFIG_WARN_UNDEF_ASSIGN", "KCONFIG_CONFIG_HEADER", "KCONFIG_AUTOHEADER_HEADER")

_PARSE_ERROR_RE = re.compile(r"^\s*(?P<file>[^\s:][^:]*):(?P<line>\d+):\s*(?P<msg>.*)$", re.S)


class KconfigTreeError(UserError):
    """The Kconfig tree could not be analysed; the caller falls back to the flat check."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.file = file
        self.line = line


class KconfigSyntaxUnsupported(KconfigTreeError):
    """kconfiglib (even with the compat layer) cannot parse a construct in the tree."""


class KconfigToolMissing(KconfigTreeError):
    """The tree's own $(error-if,...) checks failed, e.g. "C compiler 'gcc' not found"."""

    exit_code = EXIT_ENVIRONMENT


@dataclass(frozen=True, order=True)
class KernelVersion:
    version: int
    patchlevel: int
    sublevel: int = 0
    extraversion: str = ""

    @property
    def series(self) -> str:
        return f"{self.version}.{self.patchlevel}"

    def __str__(self) -> str:
        return f"{self.version}.{self.patchlevel}.{self.sublevel}{self.extraversion}"

    @classmethod
    def parse(cls, value: str | tuple[int, ...] | KernelVersion) -> KernelVersion:
        """From "6.1", "6.1.192", "6.12.117+deb12-amd64" or (6, 1, 192)."""
        if isinstance(value, KernelVersion):
            return value
        if isinstance(value, tuple):
            if len(value) < 2:
                raise UserError(f"error: kernel version {value!r} needs at least major.minor.")
            return cls(int(value[0]), int(value[1]), int(value[2]) if len(value) > 2 else 0)
        m = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", str(value))
        if not m:
            raise UserError(f"error: {value!r} is not a kernel version. Fix: give it as major.minor[.sublevel], e.g. 6.1.")
        return cls(int(m[1]), int(m[2]), int(m[3] or 0))


@dataclass(frozen=True)
class SourceTree:
    path: Path  # absolute
    version: KernelVersion
    origin: str  # the tarball it came from, or "srctree"


@dataclass(frozen=True)
class LoadInfo:
    cached: bool  # the parse came from cache_dir()/kconfig-parsed
    seconds: float  # wall time of load_tree's parse or cache load
    cache_path: str | None
    symbols: int  # defined symbols
    files: int  # Kconfig files read


@dataclass(frozen=True)
class ConfigLoad:
    path: str
    message: str  # kconfiglib's summary line
    warnings: tuple[str, ...]  # e.g. unknown symbols, values out of range


# --------------------------------------------------------------------------
# Finding and extracting a tree


def srcarch_for(arch: str) -> str:
    return _SRCARCH.get(arch, arch)


def read_kernel_version(srctree: str | Path) -> KernelVersion:
    """VERSION/PATCHLEVEL/SUBLEVEL/EXTRAVERSION from the tree's top Makefile."""
    makefile = Path(srctree) / "Makefile"
    try:
        head = makefile.read_text(errors="replace")[:4096]
    except OSError as exc:
        raise UserError(f"{makefile}: error: cannot read the kernel Makefile ({exc.strerror}). Fix: point --srctree at a kernel source tree.") from None
    fields = {"VERSION": "", "PATCHLEVEL": "", "SUBLEVEL": "", "EXTRAVERSION": ""} | makefile_version_fields(head)
    if not (fields["VERSION"].isdigit() and fields["PATCHLEVEL"].isdigit()):
        raise UserError(f"{makefile}: error: no VERSION/PATCHLEVEL lines; this is not a kernel Makefile. Fix: point --srctree at a kernel source tree.")
    sub = int(fields["SUBLEVEL"]) if fields["SUBLEVEL"].isdigit() else 0
    return KernelVersion(int(fields["VERSION"]), int(fields["PATCHLEVEL"]), sub, fields["EXTRAVERSION"])


def check_srctree(path: str | Path, arch: str = "x86") -> SourceTree:
    """A kernel source tree used in place (never written to)."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"{root}: error: no such directory. Fix: point --srctree at a kernel source tree.")
    srcarch = srcarch_for(arch)
    needed = ("Makefile", "Kconfig", "scripts/Kconfig.include", f"arch/{srcarch}/Kconfig")
    missing = [n for n in needed if not (root / n).is_file()]
    if missing:
        raise UserError(
            f"{root}: error: not a kernel source tree with Kconfig files for {arch}: missing {', '.join(missing)}. "
            "Fix: point --srctree at an unpacked kernel source (headers packages have no Kconfig files)."
        )
    return SourceTree(root, read_kernel_version(root), "srctree")


def version_from_config(path: str | Path) -> KernelVersion | None:
    """The version in a .config's header, None when the header lacks it."""
    try:
        with open(path, errors="replace") as f:
            head = f.read(2048)
    except OSError:
        return None
    m = re.search(r"^# Linux/\S+ (\d+\.\d+(?:\.\d+)?)\S* Kernel Configuration", head, re.M)
    return KernelVersion.parse(m.group(1)) if m else None


def find_source_tarball(version, search: tuple[Path, ...] = SOURCE_DIRS) -> Path:
    """Debian's linux-source-<major.minor>.tar.{xz,bz2,gz} for `version`."""
    series = KernelVersion.parse(version).series
    for where in search:
        for ext in ("xz", "bz2", "gz"):
            candidate = Path(where) / f"linux-source-{series}.tar.{ext}"
            if candidate.is_file():
                return candidate
    have = sorted(p.name for where in search for p in Path(where).glob("linux-source-*.tar.*"))
    raise EnvironmentProblem(
        f"error: no kernel source for {series} in {', '.join(map(str, search))}"
        + (f" (found {', '.join(have)})" if have else "")
        + f". Fix: apt-get install linux-source-{series}, or pass --srctree DIR."
    )


def extract_kconfig_tree(tarball: str | Path) -> Path:
    """The Kconfig files and the scripts they run, from a linux-source tarball.

    Extracted once into the cache, atomically (temp dir, then rename); the
    directory name carries the tarball's size and mtime so a new package
    version gets a new tree.
    """
    tarball = Path(tarball)
    stat = tarball.stat()
    target = cache_dir() / "kconfig-trees" / f"{tarball.name}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "Kconfig").is_file():
        return target
    if shutil.which("tar") is None:
        raise EnvironmentProblem("error: tar is not installed. Fix: apt-get install tar xz-utils.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        argv = [
            "tar", "-xf", str(tarball), "-C", str(tmp), "--strip-components=1", "--wildcards",
            "--no-wildcards-match-slash", *(f"*/{p}" for p in _TOP_LEVEL),
            "--wildcards-match-slash", *(f"*/{p}" for p in _ANYWHERE),
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        missing = [n for n in ("Makefile", "Kconfig", "scripts/Kconfig.include") if not (tmp / n).is_file()]
        if missing:
            raise EnvironmentProblem(
                f"{tarball}: error: could not extract {', '.join(missing)} ({proc.stderr.strip()[:200] or 'not in the archive'}). "
                "Fix: reinstall the linux-source package, or pass --srctree DIR."
            )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "Kconfig").is_file():  # lost a race to another extractor: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def find_source_tree(version, srctree: str | Path | None = None, arch: str = "x86", search: tuple[Path, ...] = SOURCE_DIRS) -> SourceTree:
    """The Kconfig tree for `version`: `srctree` if given, else the extracted linux-source tarball."""
    if srctree is not None:
        return check_srctree(srctree, arch)
    tarball = find_source_tarball(version, search)
    root = extract_kconfig_tree(tarball)
    tree = check_srctree(root, arch)
    return SourceTree(tree.path, tree.version, str(tarball))


# --------------------------------------------------------------------------
# Environment


def _tool_text(argv: list[str]) -> str:
    """First line of `argv` output, '' when the tool is missing (like the Makefile)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"}, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout.splitlines() or [""])[0].replace("#", "")


def kconfig_environment(tree: SourceTree, arch: str = "x86", overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the kernel's Makefile hands to Kconfig, for `tree` and `arch`.

    Tool names are the kernel's defaults (gcc, ld...), not $CC from the
    environment: the kernel's Makefile ignores those too.  Use `overrides`
    for e.g. {"CC": "clang"}.
    """
    env = {
        "srctree": str(tree.path),
        "ARCH": arch,
        "SRCARCH": srcarch_for(arch),
        "KERNELVERSION": str(tree.version),
        **_DEFAULT_TOOLS,
        **{name: "" for name in _EMPTY_VARS},
        "CONFIG_": "CONFIG_",
    }
    env.update(overrides or {})
    return env


def _tool_fingerprint(env: Mapping[str, str]) -> dict[str, list | None]:
    prints: dict[str, list | None] = {}
    for name in _TOOLS:
        words = env.get(name, "").split()
        found = shutil.which(words[0]) if words else None
        if found:
            real = os.path.realpath(found)
            st = os.stat(real)
            prints[name] = [real, st.st_size, st.st_mtime_ns]
        else:
            prints[name] = None
    return prints


@contextmanager
def patched_environ(values: Mapping[str, str], scrub: tuple[str, ...] = ()) -> Iterator[None]:
    """os.environ with `values` set and `scrub` removed; restored afterwards."""
    saved = {k: os.environ.get(k) for k in (*values, *scrub)}
    try:
        for k in scrub:
            os.environ.pop(k, None)
        os.environ.update(values)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------
# Parsing, cached


def _as_tree(srctree, arch: str) -> SourceTree:
    return srctree if isinstance(srctree, SourceTree) else check_srctree(srctree, arch)


def _parse(tree: SourceTree, env: Mapping[str, str]) -> CompatKconfig:
    parse_env = dict(env)
    parse_env["KCONFIG_FUNCTIONS"] = "dbgscaffold.kconfig.compat"
    cc = env.get("CC", "gcc").split()
    parse_env.setdefault("CC_VERSION_TEXT", _tool_text([*cc, "--version"]) if cc else "")
    if shutil.which(env.get("RUSTC", "rustc")):
        parse_env.setdefault("RUSTC_VERSION_TEXT", _tool_text([env.get("RUSTC", "rustc"), "--version"]))
    else:
        parse_env.setdefault("RUSTC_VERSION_TEXT", "")
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-kconfig-") as scratch, patched_environ(parse_env, _SCRUB), _gc_paused():
        try:
            kconf = CompatKconfig("Kconfig", shell_cwd=scratch)
        except kconfiglib.KconfigError as exc:
            raise _tree_error(exc, tree) from None
        except UnicodeDecodeError as exc:
            raise KconfigTreeError(f"{tree.path}: error: a Kconfig file is not UTF-8 ({exc}); falling back to the flat analysis.") from None
        except OSError as exc:
            raise KconfigTreeError(f"{tree.path}: error: cannot read the Kconfig tree ({exc}); falling back to the flat analysis.") from None
    kconf._shell_cwd = None  # the scratch directory is gone
    _compact(kconf)
    return kconf


def _tree_error(exc: kconfiglib.KconfigError, tree: SourceTree) -> KconfigTreeError:
    text = str(exc).strip()
    m = _PARSE_ERROR_RE.match(text)
    file, line, detail = (m["file"], int(m["line"]), m["msg"].strip()) if m else (None, None, text)
    where = f"{tree.path / file}:{line}" if file and not os.path.isabs(file) else f"{file}:{line}" if file else str(tree.path)
    detail = detail.splitlines()[0] if detail else text
    if "couldn't parse" in detail:  # every kconfiglib syntax error says this
        return KconfigSyntaxUnsupported(
            f"{where}: error: kconfiglib {'.'.join(map(str, kconfiglib.VERSION))} cannot parse this Kconfig syntax ({detail}); "
            "falling back to the flat analysis (no dependency explanations). Fix: report the construct to dbgscaffold.",
            file,
            line,
        )
    if re.search(r"\bnot found\b", detail):
        return KconfigToolMissing(f"{where}: error: {detail}; falling back to the flat analysis. Fix: install it (apt-get install gcc binutils).", file, line)
    return KconfigTreeError(f"{where}: error: {detail}; falling back to the flat analysis.", file, line)


def _cache_key(tree: SourceTree, arch: str, env: Mapping[str, str]) -> str:
    material = {
        "srctree": str(tree.path),
        "arch": arch,
        "env": dict(sorted(env.items())),
        "tools": _tool_fingerprint(env),
        "kconfiglib": list(kconfiglib.VERSION),
        "compat": COMPAT_VERSION,
        "python": list(sys.version_info[:2]),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]


def parsed_cache_dir() -> Path:
    return cache_dir() / "kconfig-parsed"


def clear_parsed_cache() -> int:
    """Remove every cached parse; returns how many entries went."""
    count = 0
    for entry in parsed_cache_dir().glob("*.pickle"):
        entry.unlink(missing_ok=True)
        count += 1
    return count


def _file_states(root: Path, names: list[str]) -> list[list]:
    """[name, size, mtime_ns, sha256] per Kconfig file."""
    out = []
    for name in names:
        path = Path(name) if os.path.isabs(name) else root / name
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            out.append([name, st.st_size, st.st_mtime_ns, hashlib.sha256(f.read()).hexdigest()])
    return out


def _files_unchanged(root: Path, recorded: list[list]) -> bool:
    """True when every file still has its recorded content.

    Like git's index: a file whose size and mtime match is taken as
    unchanged (1,500 stats: ~3 ms); any other is hashed and compared.
    """
    for name, size, mtime_ns, digest in recorded:
        path = Path(name) if os.path.isabs(name) else root / name
        try:
            st = os.stat(path)
            if st.st_size == size and st.st_mtime_ns == mtime_ns:
                continue
            if st.st_size != size or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                return False
        except OSError:
            return False
    return True


_NO_DEPENDENTS: frozenset = frozenset()


def _compact(kconf: CompatKconfig) -> None:
    """Share the empty containers of a parsed tree.

    A kernel tree has ~120,000 empty property lists and ~8,000 empty
    dependent sets; each costs time to unpickle and to garbage-collect.
    kconfiglib only fills these while parsing, so after the parse a shared
    immutable empty value reads the same (and any late write would raise
    instead of corrupting other symbols).
    """
    items = [*kconf.syms.values(), *kconf.choices]
    for item in items:
        for attr in ("defaults", "selects", "implies", "ranges", "nodes"):
            if getattr(item, attr, None) == []:
                setattr(item, attr, ())
        if not item._dependents:
            item._dependents = _NO_DEPENDENTS
    for node in kconf.node_iter():
        for attr in ("defaults", "selects", "implies", "ranges"):
            if getattr(node, attr) == []:
                setattr(node, attr, ())


def deep_dumps(obj) -> bytes:
    """pickle.dumps for kconfiglib's object graph.

    Pickling follows symbol and menu links depth first (~60,000 levels on a
    kernel tree); that needs a raised recursion limit and, to stay clear of
    the C stack, a thread with a large stack.  Loading is not recursive.
    """
    result: dict = {}

    def run():
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 1_000_000))
        try:
            result["data"] = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc
        finally:
            sys.setrecursionlimit(old)

    old_size = threading.stack_size(512 * 1024 * 1024)
    try:
        worker = threading.Thread(target=run, name="kconfig-pickle")
        worker.start()
    finally:
        threading.stack_size(old_size)
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["data"]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No collections while building a tree's ~200k objects.

    Collecting during a load triples its time.  Afterwards the new objects go
    straight to the oldest generation (freeze, then unfreeze): they live as
    long as the tree, and otherwise the next two young collections would each
    walk all of them (~60 ms).  Full collections still free them.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def _loads(data: bytes):
    with _gc_paused():
        return pickle.loads(data)


def _read_cached(entry: Path, root: Path):
    """(kconf, blob) from a cache entry whose Kconfig files are unchanged, else None.
    An entry another user could have written is not read: unpickling it would run their code."""
    if not trusted(entry):
        return None
    try:
        with open(entry, "rb") as f:
            header = pickle.load(f)
            if not isinstance(header, dict) or header.get("format") != 2:
                return None
            try:
                if not _files_unchanged(root, header["files"]):
                    return None
            except (OSError, ValueError, TypeError):
                return None
            blob = f.read()
        kconf = _loads(blob)
    except Exception:  # corrupt or foreign entry: ignore it, it gets rebuilt
        return None
    if not isinstance(kconf, CompatKconfig):
        return None
    return kconf, blob


def _write_cached(entry: Path, root: Path, kconf: CompatKconfig, blob: bytes) -> None:
    header = {"format": 2, "files": _file_states(root, list(kconf.kconfig_filenames)), "symbols": len(kconf.unique_defined_syms)}
    entry.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pickle", dir=entry.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.write(blob)
        os.replace(tmp, entry)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tree(
    srctree: str | Path | SourceTree,
    arch: str = "x86",
    config: str | Path | None = None,
    *,
    use_cache: bool = True,
    env_overrides: Mapping[str, str] | None = None,
) -> CompatKconfig:
    """Parse the Kconfig tree at `srctree` for `arch` (and load `config` into it)."""
    start = time.perf_counter()
    tree = _as_tree(srctree, arch)
    env = kconfig_environment(tree, arch, env_overrides)
    entry = parsed_cache_dir() / f"{_cache_key(tree, arch, env)}.pickle"
    got = _read_cached(entry, tree.path) if use_cache else None
    if got:
        kconf, blob = got
        cached = True
    else:
        kconf = _parse(tree, env)
        blob = None
        cached = False
        if use_cache:
            blob = deep_dumps(kconf)
            try:
                _write_cached(entry, tree.path, kconf, blob)
            except OSError:
                pass  # a read-only cache costs speed, not correctness
    kconf._pristine = blob  # lets fresh_copy() skip a re-parse
    kconf.source_tree = tree
    kconf.arch = arch
    kconf.load_info = LoadInfo(cached, time.perf_counter() - start, str(entry) if use_cache else None,
                               len(kconf.unique_defined_syms), len(kconf.kconfig_filenames))
    kconf.config_load = load_config(kconf, config) if config is not None else None
    return kconf


def load_config(kconf: CompatKconfig, path: str | Path) -> ConfigLoad:
    """Load a .config into `kconf` (replacing any user values); warnings captured."""
    path = str(path)
    before = len(kconf.warnings)
    try:
        message = kconf.load_config(path)
    except OSError as exc:
        raise UserError(f"{path}: error: cannot read the config ({getattr(exc, 'strerror', None) or exc}). Fix: check the path.") from None
    warnings = tuple(kconf.warnings[before:])
    del kconf.warnings[before:]
    return ConfigLoad(path, message, warnings)


def _pristine_blob(kconf: CompatKconfig) -> bytes:
    blob = getattr(kconf, "_pristine", None)
    if blob is None:
        # Parsed without the cache: pickle the tree minus its user values.
        saved = _user_values(kconf)
        try:
            kconf.unset_values()
            blob = deep_dumps(kconf)
        finally:
            _restore_user_values(kconf, saved)
        kconf._pristine = blob
    return blob


def fresh_copy(kconf: CompatKconfig) -> CompatKconfig:
    """The same parsed tree with no .config loaded, independent of `kconf`."""
    copy = _loads(_pristine_blob(kconf))
    copy._pristine = kconf._pristine
    for attr in ("source_tree", "arch", "load_info"):
        setattr(copy, attr, getattr(kconf, attr, None))
    copy.config_load = None
    copy.config_path = None
    return copy


def _user_values(kconf) -> tuple[dict, list]:
    syms = {s.name: s.user_value for s in kconf.unique_defined_syms if s.user_value is not None}
    choices = [(c.user_value, c.user_selection.name if c.user_selection else None) for c in kconf.unique_choices]
    return syms, choices


def _restore_user_values(kconf, saved: tuple[dict, list]) -> None:
    syms, choices = saved
    for sym in kconf.unique_defined_syms:
        sym.user_value = syms.get(sym.name)
    for choice, (value, selection) in zip(kconf.unique_choices, choices):
        choice.user_value = value
        choice.user_selection = kconf.syms[selection] if selection else None
    kconf._invalidate_all()


def clone(kconf: CompatKconfig) -> CompatKconfig:
    """An independent copy of `kconf` with the same user values (a .config and any set_value)."""
    copy = fresh_copy(kconf)
    _restore_user_values(copy, _user_values(kconf))
    copy.config_path = kconf.config_path
    copy.config_load = getattr(kconf, "config_load", None)
    return copy


def menu_order(kconf: kconfiglib.Kconfig) -> dict[str, int]:
    """Symbol name -> index in menuconfig order (first appearance wins)."""
    order: dict[str, int] = {}
    for node in kconf.node_iter():
        item = node.item
        if isinstance(item, kconfiglib.Symbol) and item.name not in order:
            order[item.name] = len(order)
    return order
