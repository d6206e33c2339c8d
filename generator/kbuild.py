"""Run kbuild on a module directory and turn its output into diagnostics.

`parse_diagnostics()` is pure and knows gcc's, sparse's and modpost's line
formats; `build()` runs make and returns a BuildResult.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import EnvironmentProblem

# gcc and sparse: "file.c:12:5: warning: message [-Wflag]"
_COMPILER_RE = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)?\s*"
    r"(?P<sev>warning|error|fatal error|note):\s*(?P<msg>.*)$"
)
_MODPOST_RE = re.compile(r"^(?P<sev>WARNING|ERROR): modpost: (?P<msg>.*)$")
_MAKE_ERROR_RE = re.compile(r"^make(?:\[\d+\])?: \*\*\* (?P<msg>.*)$")


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "warning", "error" or "note"
    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    tool: str = "gcc"  # gcc (or sparse: same format), modpost, make

    def __str__(self) -> str:
        where = ":".join(str(x) for x in (self.file, self.line, self.column) if x)
        return f"{where + ': ' if where else ''}{self.severity}: {self.message}"


def parse_diagnostics(output: str) -> list[Diagnostic]:
    """Every warning and error in kbuild output; notes and progress lines are dropped."""
    found = []
    for raw in output.splitlines():
        line = raw.rstrip()
        m = _COMPILER_RE.match(line)
        if m:
            sev = "error" if m["sev"] == "fatal error" else m["sev"]
            if sev == "note":
                continue
            tool = "gcc" if m["msg"].rstrip().endswith("]") else "sparse"
            found.append(Diagnostic(sev, m["msg"], m["file"], int(m["line"]), int(m["col"] or 0), tool))
            continue
        m = _MODPOST_RE.match(line)
        if m:
            found.append(Diagnostic(m["sev"].lower(), m["msg"], tool="modpost"))
            continue
        m = _MAKE_ERROR_RE.match(line)
        if m:
            found.append(Diagnostic("error", m["msg"], tool="make"))
    return found


@dataclass
class BuildResult:
    returncode: int
    output: str
    seconds: float
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def build(project: Path, kdir: Path, extra_warnings: bool = False, sparse: bool = False, target: str = "modules", timeout: float = 600) -> BuildResult:
    """`make -C kdir M=project [W=1] [C=2] target`, output captured and parsed."""
    if shutil.which("make") is None:
        raise EnvironmentProblem("error: 'make' is not installed. Fix: apt-get install build-essential.")
    if not (Path(kdir) / "Makefile").is_file():
        raise EnvironmentProblem(
            f"{kdir}: error: not a kernel build directory (no Makefile). "
            "Fix: install the headers (apt-get install linux-headers-<release>) or pass --kdir."
        )
    if sparse and shutil.which("sparse") is None:
        raise EnvironmentProblem("error: 'sparse' is not installed. Fix: apt-get install sparse.")
    argv = ["make", "-C", str(kdir), f"M={Path(project).resolve()}"]
    if extra_warnings:
        argv.append("W=1")
    if sparse:
        argv.append("C=2")
    argv.append(target)
    env = {**os.environ, "LC_ALL": "C"}
    start = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout, check=False)
    seconds = time.monotonic() - start
    return BuildResult(proc.returncode, proc.stdout, seconds, parse_diagnostics(proc.stdout))


BUILD_INPUTS = ("Kbuild", "Makefile")


def source_files(project: Path) -> list[Path]:
    """The C sources and headers of a project (not kbuild's own *.mod.c)."""
    files = [*project.glob("*.c"), *project.glob("*.h"), *project.glob("user/*.c"), *project.glob("user/*.h")]
    return sorted(p for p in files if not p.name.endswith(".mod.c"))


@contextmanager
def scratch_build(project: Path, kdir: Path, extra_warnings: bool = False, sparse: bool = False) -> Iterator[tuple[Path, BuildResult]]:
    """Build a scratch copy of the project's sources against `kdir`.

    Yields (the copy, the result) while the copy exists, so callers can take
    the .ko out; the project directory is left as it was and builds for
    different kernels never share objects.  Messages name the user's files.
    """
    project = Path(project).resolve()
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-build-") as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        for src in [*source_files(project), *(project / n for n in BUILD_INPUTS)]:
            if src.is_file():
                dst = copy / src.relative_to(project)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        result = build(copy, kdir, extra_warnings=extra_warnings, sparse=sparse)
        result.output = result.output.replace(str(copy), str(project))
        result.diagnostics = [replace(d, file=d.file.replace(str(copy), str(project))) for d in result.diagnostics]
        yield copy, result
