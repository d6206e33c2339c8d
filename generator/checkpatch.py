"""Find the kernel's scripts/checkpatch.pl and run it on generated sources.

Distribution header packages do not ship checkpatch.pl; Debian's
linux-source-<ver> package does, inside a tarball.  We extract the three
files checkpatch needs once into the cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import EnvironmentProblem
from .paths import cache_dir

NEEDED = ("scripts/checkpatch.pl", "scripts/spelling.txt", "scripts/const_structs.checkpatch")
_FINDING_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<level>ERROR|WARNING|CHECK):(?P<type>[A-Z0-9_]+): (?P<msg>.*)$")


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    level: str  # ERROR, WARNING or CHECK
    type: str  # checkpatch's type name, e.g. LONG_LINE
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.level}:{self.type}: {self.message}"


def parse_findings(output: str) -> list[Finding]:
    """Findings from `checkpatch.pl --terse --show-types` output."""
    return [
        Finding(m["file"], int(m["line"]), m["level"], m["type"], m["msg"])
        for m in map(_FINDING_RE.match, output.splitlines())
        if m
    ]


def _series_key(tarball: Path) -> tuple[int, ...]:
    m = re.match(r"linux-source-(\d+)\.(\d+)", tarball.name)
    return (int(m.group(1)), int(m.group(2))) if m else ()


def _source_tarballs(series: str | None = None) -> list[Path]:
    """Debian's linux-source-X.Y tarballs, newest first (or only X.Y's)."""
    found = Path("/usr/src").glob(f"linux-source-{series or '*'}.tar.*")
    return sorted(found, key=_series_key, reverse=True)


def find_checkpatch(extract: bool = True, series: str | None = None) -> Path:
    """$CHECKPATCH, a kernel tree's copy, or one extracted from linux-source.

    `series` ("6.1") asks for the checkpatch of that linux-source package
    only, skipping $CHECKPATCH and kernel trees.
    """
    if series is not None:
        return _from_tarballs(_source_tarballs(series), extract, f"apt-get install linux-source-{series}")
    explicit = os.environ.get("CHECKPATCH")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise EnvironmentProblem(f"{path}: error: CHECKPATCH points to no file. Fix: unset it or point it to scripts/checkpatch.pl.")
        return path
    candidates = [*Path("/usr/src").glob("linux-source-*/scripts/checkpatch.pl"), *Path("/lib/modules").glob("*/build/scripts/checkpatch.pl")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return _from_tarballs(_source_tarballs(), extract, "apt-get install linux-source-6.1 (dbgscaffold extracts it)")


def _from_tarballs(tarballs: list[Path], extract: bool, how: str) -> Path:
    for tarball in tarballs:
        stat = tarball.stat()
        target = cache_dir() / "checkpatch" / f"{tarball.name}-{stat.st_size}-{int(stat.st_mtime)}"
        script = target / "scripts" / "checkpatch.pl"
        if script.is_file():
            return script
        if extract:
            _extract(tarball, target)
            return script
    raise EnvironmentProblem(
        f"error: checkpatch.pl not found. Fix: {how}, or set CHECKPATCH=/path/to/linux/scripts/checkpatch.pl."
    )


def _extract(tarball: Path, target: Path) -> None:
    """Pull NEEDED out of the tarball into target/, atomically.

    GNU tar with --wildcards is twice as fast as Python's tarfile here.
    """
    if shutil.which("tar") is None:
        raise EnvironmentProblem("error: tar is not installed. Fix: apt-get install tar xz-utils.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        argv = ["tar", "-xf", str(tarball), "-C", str(tmp), "--strip-components=1", "--wildcards", *(f"*/{n}" for n in NEEDED)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if not (tmp / "scripts" / "checkpatch.pl").is_file():
            raise EnvironmentProblem(
                f"{tarball}: error: could not extract scripts/checkpatch.pl ({proc.stderr.strip()[:200]}). "
                "Fix: reinstall the package, or set CHECKPATCH."
            )
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # lost a race to another extractor: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class CheckpatchResult:
    findings: list[Finding]
    output: str
    lines_checked: int


def run_checkpatch(files: list[Path], script: Path | None = None, cwd: Path | None = None) -> CheckpatchResult:
    """checkpatch.pl --strict --no-tree on `files`, one run."""
    script = script or find_checkpatch()
    if shutil.which("perl") is None:
        raise EnvironmentProblem("error: perl is not installed. Fix: apt-get install perl.")
    argv = ["perl", str(script), "--strict", "--no-tree", "--terse", "--show-types", "-f", *map(str, files)]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    findings = parse_findings(proc.stdout)
    if proc.returncode != 0 and not findings:
        raise EnvironmentProblem(f"{script}: error: checkpatch failed without findings (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[:500]}")
    # --terse prints totals only for files with findings: count lines ourselves.
    lines = sum(len((Path(cwd or ".") / f).read_bytes().splitlines()) for f in files)
    return CheckpatchResult(findings, proc.stdout + proc.stderr, lines)
