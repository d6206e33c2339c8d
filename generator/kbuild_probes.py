"""kbuild's compiler probes answered from the cache: the answers file of a kernel tree and
toolchain, the make arguments that read (and record) it, and the merge of new answers.

kbuild runs ~30 compiler probes (scripts/Makefile.compiler's try-run: cc-option, as-instr,
ld-option ...) every time it parses its Makefiles, a gcc run each: ~0.5 s of a 0.6 s no-op
`make M=`. kbuild_probes.mk replaces try-run with a lookup in the answers file, keyed by each
probe's whole command line; the file's name covers what the command line does not say (the
tree, the toolchain's binaries, the environment, the make arguments). A tree whose try-run is
not the one kbuild_probes.mk knows gets no cache at all: its probes run as kbuild's own.

The answers file is make code: only a file no other user could have written is read, only
trusted builds record (a sandboxed one reads a read-only copy), and new answers are merged
whole-line, one per probe, under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from . import paths

PROBE_RULES = Path(__file__).with_name("kbuild_probes.mk")
PROBES_FORMAT = "2"
WARMUP_C = '// SPDX-License-Identifier: GPL-2.0\n#include <linux/module.h>\nMODULE_LICENSE("GPL");\n'  # a module of our own
ENV_IN_KEY = ("ARCH", "CROSS_COMPILE", "LLVM", "KCFLAGS")  # environment kbuild reads that changes objects
_MAKE_PATH = re.compile(r"[A-Za-z0-9_./+-]+")  # a path make's include and variables take as it is
_PROBE_LINE = re.compile(r"dbgs-probes \+= (\S+)=>\S*=<")
_TOOLS = ("gcc", "cc", "clang", "ld", "ld.bfd", "ld.lld", "as")  # what kbuild's probes may run (with $CROSS_COMPILE)

# kbuild's TMPOUT and try-run as kbuild_probes.mk copies them (Linux 5.13 .. 6.12 at least).
# Older trees differ (TMPOUT is M= itself, try-run also sets TMPO): there the copy would
# remove the module's directory, so a tree is served only when its text is exactly this.
KBUILD_TRY_RUN = """TMPOUT = $(if $(KBUILD_EXTMOD),$(firstword $(KBUILD_EXTMOD))/).tmp_$$$$

# try-run
# Usage: option = $(call try-run, $(CC)...-o "$$TMP",option-ok,otherwise)
# Exit code chooses option. "$$TMP" serves as a temporary file and is
# automatically cleaned up.
try-run = $(shell set -e;\t\t\\
\tTMP=$(TMPOUT)/tmp;\t\t\\
\ttrap "rm -rf $(TMPOUT)" EXIT;\t\\
\tmkdir -p $(TMPOUT);\t\t\\
\tif ($(1)) >/dev/null 2>&1;\t\\
\tthen echo "$(2)";\t\t\\
\telse echo "$(3)";\t\t\\
\tfi)
"""


def srctree(kdir: Path) -> Path:
    """Where the kernel's sources of a build directory are: its `source` link (O=), the
    tree its Makefile includes (Debian's headers: <release>-common), or itself."""
    kdir = Path(kdir)
    if (kdir / "source").is_dir():
        return kdir / "source"
    first = paths.read_or_empty(kdir / "Makefile").split("\n", 1)[0]
    included = re.fullmatch(r"include (/\S+)/Makefile", first.strip())
    return Path(included[1]) if included else kdir


@functools.cache
def _served(compiler_mk: Path, identity: str) -> bool:
    text = paths.read_or_empty(compiler_mk)
    return "\n" + KBUILD_TRY_RUN in "\n" + text


def served(kdir: Path) -> bool:
    """Is this tree's try-run the one kbuild_probes.mk copies?"""
    compiler_mk = srctree(kdir) / "scripts" / "Makefile.compiler"
    return PROBE_RULES.is_file() and _served(compiler_mk, paths.file_identity(compiler_mk))


def _program(name: str, path: str) -> str:
    found = shutil.which(name, path=path)
    return f"{name}={found}:{paths.file_identity(Path(found).resolve())}" if found else f"{name}=-"


def probe_answers(kdir: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Path:
    """The answers file for this kernel tree, toolchain and make arguments `args`, as make
    runs with environment `env` (default: ours): another tree, .config or Makefile, a new
    compiler or linker (path, size, mtime; looked up on env's PATH, with CROSS_COMPILE),
    or other arguments or environment kbuild reads each give another file."""
    env = os.environ if env is None else env
    kdir = Path(kdir).resolve()
    search = env.get("PATH", os.defpath)
    compiler = re.search(r'^CONFIG_CC_VERSION_TEXT="(\S+)', paths.read_or_empty(kdir / ".config"), re.M)  # e.g. gcc-12
    tools = {*_TOOLS, *([compiler[1]] if compiler else [])}
    tools |= {env.get("CROSS_COMPILE", "") + t for t in tools}
    parts = [
        PROBES_FORMAT, str(kdir), *(paths.file_identity(kdir / n) for n in (".config", "Makefile", ".kernelvariables")),
        *(_program(name, search) for name in sorted(tools)),
        *(f"{k}={env.get(k, '')}" for k in (*ENV_IN_KEY, "CC", "LD", "PATH")),
        *(f"arg={a}" for a in args),
    ]
    return paths.cache_dir() / "probes" / (hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24] + ".mk")


def answers_for(kdir: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Path | None:
    """probe_answers(), or None where there is no cache to use (a tree we do not serve,
    someone else's cache: the commands that need the cache say so; a build goes on)."""
    if not served(kdir):
        return None
    try:
        return probe_answers(kdir, args, env)
    except paths.ForeignCache:
        return None


def usable(answers: Path) -> bool:
    """Answers make may read: a file only we could have written (it is make code)."""
    return answers.is_file() and paths.trusted(answers)


def make_args(answers: Path | str | None, record: Path | None, rules: Path | str = PROBE_RULES) -> list[str]:
    """make's arguments that answer kbuild's probes from `answers` (and write new ones to `record`)."""
    if not all(_MAKE_PATH.fullmatch(str(p)) for p in (rules, *(p for p in (answers, record) if p is not None))):
        return []
    return [*([f"--eval=include {answers}"] if answers is not None else []), f"--eval=include {rules}",
            *([f"DBGS_PROBES_RECORD={record}"] if record is not None else [])]


def _private_dir(directory: Path) -> None:
    """Made 0700 whatever the umask (a group-writable one would fail paths.trusted())."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)


KEEP = 32  # answers files (trees x toolchains x arguments x PATHs), the most recently used


def used(answers: Path) -> None:
    """Note that `answers` served a build (its mtime: prune() keeps the recently used)."""
    with contextlib.suppress(OSError):
        os.utime(answers)


def prune(directory: Path, keep: int = KEEP) -> None:
    """Remove all but the `keep` most recently used answers files, with what goes with each
    (.warmed, the shared .module-common, locks). One removed by mistake costs a build its
    probes once."""
    files = sorted(directory.glob("*.mk"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        for sibling in directory.glob(old.stem + ".*"):
            if sibling.is_dir():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)


def new_record(answers: Path) -> Path | None:
    """Where a build writes the answers it had to probe for; None: none is written (the
    cache is read-only or nearly full: the build goes on without)."""
    try:
        _private_dir(answers.parent)
        if shutil.disk_usage(answers.parent).free < 16 << 20:
            return None
        for stale in answers.parent.glob("*.new"):  # of a run killed outright, over an hour ago
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink(missing_ok=True)
        if not answers.exists():  # a new answers file is coming
            prune(answers.parent)
        fd, name = tempfile.mkstemp(prefix=answers.name + ".", suffix=".new", dir=answers.parent)
        os.close(fd)
        return Path(name)
    except OSError:
        return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One writer of `path` at a time (<path>.lock)."""
    with open(path.parent / (path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def merge(answers: Path, record: Path) -> None:
    """Add the whole lines of `record` for probes `answers` has no answer to yet (atomically,
    under the lock), then remove `record`. The cache is only a shortcut: a failure here costs
    the next build its probes, no more."""
    try:
        new = [line for line in record.read_text(errors="replace").splitlines() if _PROBE_LINE.fullmatch(line)]
        if new:
            with locked(answers):
                old = answers.read_text(errors="replace").splitlines() if usable(answers) else []  # never launder another's lines
                by_key: dict[str, str] = {}
                for line in (*old, *new):
                    match = _PROBE_LINE.fullmatch(line)
                    if match:
                        by_key.setdefault(match[1], line)  # the first answer stays: later builds read that one
                write_private(answers, "".join(line + "\n" for line in by_key.values()).encode())
    except OSError:
        pass
    finally:
        record.unlink(missing_ok=True)


def write_private(path: Path, data: bytes) -> None:
    """paths.atomic_write, then 0644 whatever the umask (readable by the sandbox's nobody,
    writable by us only: paths.trusted())."""
    paths.atomic_write(path, data)
    path.chmod(0o644)


def shown_args(answers: Path | None, directory: Path, shown_as: str) -> list[str]:
    """For a build that sees `directory` at `shown_as` (a sandbox, read-only): the rules and
    `answers` (answers_for() of the build's tree, arguments and environment) copied there,
    and make's arguments to use them. Nothing is recorded (an untrusted Kbuild could write
    anything into what later builds read); without answers yet, [] (kbuild probes as usual)."""
    if answers is None or not usable(answers):
        return []
    used(answers)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # the sandbox's nobody reads them, whatever our umask
    for source, name in ((PROBE_RULES, "rules.mk"), (answers, "answers.mk")):
        shutil.copyfile(source, directory / name)
        (directory / name).chmod(0o644)
    return make_args(f"{shown_as}/answers.mk", None, f"{shown_as}/rules.mk")
