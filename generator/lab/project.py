"""Write a lab out: the student's skeleton or the instructor's solution.

A project holds the sources (Kbuild, Makefile, *.c, *.h), README.md, tests/
(the checks it may run: visible ones for a skeleton, all for a solution; and
lib.sh, the functions they share, when the lab has one) and
MARKER, which names the lab so `lab check` knows what to run.
Edges only (files); the skeleton text itself comes from skeleton.py.
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from pathlib import Path

from ..errors import UserError
from .manifest import CHECK_LIB, SOURCE_SUFFIXES, Lab
from .skeleton import skeleton_text

MARKER = ".dbgscaffold-lab"


def project_files(lab: Lab, solution: bool, only: frozenset[int] | None = None) -> dict[str, bytes]:
    """Relative path -> bytes of the project to write (with `only`: the solution
    with just those tasks' TODO regions stripped, for selfcheck)."""
    out: dict[str, bytes] = {}
    for path in sorted(p for p in lab.solution.rglob("*") if p.is_file()):
        rel = str(path.relative_to(lab.solution))
        if path.suffix in SOURCE_SUFFIXES and not solution:
            out[rel] = skeleton_text(path.read_text(encoding="utf-8"), str(path), only)[0].encode()
        else:
            out[rel] = path.read_bytes()
    if lab.readme.is_file():
        out["README.md"] = lab.readme.read_bytes()
    for c in lab.checks:
        if solution or not c.hidden:
            out[f"tests/{c.name}"] = c.path.read_bytes()
    if lab.check_lib is not None:  # every lab has visible checks: they need it
        out[f"tests/{CHECK_LIB}"] = lab.check_lib.read_bytes()
    kind = "solution" if solution else "skeleton"
    out[MARKER] = f'# dbgscaffold lab project: `dbgscaffold lab check` reads this\nlab = "{lab.id}"\nfrom = "{kind}"\n'.encode()
    return out


def write_project(lab: Lab, dest: Path, solution: bool = False, force: bool = False, only: frozenset[int] | None = None) -> list[str]:
    """Write the project into dest (all or nothing); refuse a non-empty dest without force."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: error: exists and is not a directory. Fix: choose another DIR.")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise UserError(f"{dest}: error: the directory is not empty. Fix: choose another DIR, or --force to replace its contents.")
    files = project_files(lab, solution, only)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for rel, data in files.items():
            p = staging / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            if rel.startswith("tests/") and rel != f"tests/{CHECK_LIB}":  # not executable: not a test of its own
                p.chmod(0o755)
        staging.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(files)


def lab_of(project: Path) -> str:
    """The lab id in a project's marker file, or a message saying what to do."""
    marker = Path(project) / MARKER
    if not marker.is_file():
        raise UserError(f"{marker}: error: not a lab project (no {MARKER}). Fix: run 'dbgscaffold lab start LAB DIR' and pass DIR, or give --lab.")
    try:
        data = tomllib.loads(marker.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{marker}: error: unreadable ({exc}). Fix: write lab = \"<lab id>\" in it.") from None
    if not isinstance(data.get("lab"), str):
        raise UserError(f"{marker}:1: error: no lab = \"...\" line. Fix: write lab = \"<lab id>\" in it.")
    return data["lab"]
