"""Grading: submissions in, CSV and JSON out; shards, merging, a CI workflow.

Pure: shard(), report_doc(), merge_docs(), csv_text(), workflow_yaml().
Edges: find_submissions() and extract() (safe tarball extraction).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .. import schemas
from ..errors import EXIT_USAGE, UserError
from ..paths import atomic_write
from ..untrusted_build import MAX_SOURCE_BYTES
from .manifest import Lab

ARCHIVES = (".tar.gz", ".tgz", ".tar")
OLD_REPORT_FORMAT = "dbgscaffold-lab-grades-1"  # the same document, before the schema key


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path  # a directory or an archive


def student_name(path: Path) -> str | None:
    """The entry's name without its archive extension; None when it is no submission."""
    if path.is_dir():
        return path.name
    for ext in ARCHIVES:
        if path.name.endswith(ext) and len(path.name) > len(ext):
            return path.name[: -len(ext)]
    return None


def find_submissions(folder: Path) -> list[Submission]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: error: no such directory. Fix: pass the folder holding one directory or tarball per student.")
    found: dict[str, Submission] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        name = student_name(entry)
        if name is None:
            continue
        if name in found:
            raise UserError(f"{entry}: error: a second submission for {name!r} (also {found[name].path.name}). Fix: keep one per student.")
        found[name] = Submission(name, entry)
    if not found:
        raise UserError(f"{folder}: error: no submissions (directories or {', '.join(ARCHIVES)} files). Fix: put one per student there.")
    return list(found.values())


def shard(items: list, spec: str | None) -> list:
    """--shard K/N: every N-th item starting at the K-th (1-based) of the sorted list."""
    if not spec:
        return items
    m = re.fullmatch(r"(\d+)/(\d+)", spec)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        err = UserError(f"error: --shard {spec!r}: expected K/N with 1 <= K <= N, e.g. 2/4.")
        err.exit_code = EXIT_USAGE
        raise err
    k, n = int(m.group(1)), int(m.group(2))
    return [x for i, x in enumerate(items) if i % n == k - 1]


def _safe_member(member: tarfile.TarInfo, dest: Path) -> str | None:
    """Why a member may not be extracted, or None."""
    name = member.name
    target = (dest / name).resolve()
    if name.startswith("/") or ".." in Path(name).parts or not str(target).startswith(str(dest.resolve()) + "/") and target != dest.resolve():
        return f"{name}: a path outside the submission"
    if member.issym() or member.islnk():
        return f"{name}: a link (links are not accepted)"
    if not (member.isfile() or member.isdir()):
        return f"{name}: not a regular file or directory"
    return None


def extract(archive: Path, dest: Path, limit: int = MAX_SOURCE_BYTES) -> Path:
    """Extract a student's tarball safely (no absolute paths, no .., no links, no
    devices, at most `limit` bytes); returns the project directory inside it."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if archive.stat().st_size > limit:  # before tarfile reads (and decompresses) any of it
            raise UserError(f"{archive}: error: refused: {archive.stat().st_size >> 20} MiB; a submission may have at most "
                            f"{limit >> 20} MiB. Fix: submit the sources only.")
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            problems = [p for m in members if (p := _safe_member(m, dest))]
            if problems:
                raise UserError(f"{archive}: error: refused: " + "; ".join(problems[:3]))
            if sum(m.size for m in members) > limit:
                raise UserError(f"{archive}: error: refused: more than {limit >> 20} MiB once extracted. Fix: submit the sources only.")
            for m in members:
                target = dest / m.name
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                if src is None:  # not a regular file: _safe_member let only files and directories through
                    continue
                with open(target, "wb") as f:
                    shutil.copyfileobj(src, f)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{archive}: error: not a readable tarball ({exc})") from None
    return project_root(dest)


def project_root(folder: Path) -> Path:
    """The folder with the sources: itself, or its only subdirectory (a tarball of a folder)."""
    folder = Path(folder)
    if any(folder.glob("*.c")) or any(folder.glob("*.stp")) or (folder / "Kbuild").is_file() or (folder / ".dbgscaffold-lab").is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return project_root(subs[0]) if len(subs) == 1 else folder


# ---------------------------------------------------------------- reports (pure)


def student_doc(outcome) -> dict:
    s = outcome.score
    doc = {
        "student": outcome.name,
        "kernel": outcome.release,
        "tasks": {str(t.number): t.points for t in s.tasks},
        "total": s.total,
        "max": s.max_points,
        "verdict": s.verdict,
        "exit": s.exit_code,
        "checks": [
            {"number": c.number, "name": c.name, "task": c.task, "hidden": c.hidden, "status": c.status, "diagnostics": list(c.diagnostics)}
            for c in s.checks
        ],
    }
    doc["seconds"] = {"build": round(getattr(outcome.run, "build_seconds", 0.0), 2), "vm": round(getattr(outcome.run, "wall_seconds", 0.0), 2)}
    if s.where:
        doc["crash_location"] = s.where
    if outcome.build_errors:
        doc["build_errors"] = list(outcome.build_errors)
    # what the kernel's detectors found (a crash, KASAN, lockdep, a leak), by title
    doc["findings"] = list(outcome.run.findings)
    if outcome.run.forged_count:  # fake results: worth nothing, but the grader should know someone tried
        doc["forged_lines"] = {"count": outcome.run.forged_count, "lines": list(outcome.run.forged)}
    if outcome.run.crashes:
        c = outcome.run.crashes[0]
        doc["crash"] = {"title": c.title, "function": c.function, "module": c.module, "check": c.check, "excerpt": c.excerpt}
    return doc


def report_doc(lab: Lab, students: list[dict]) -> dict:
    return {
        "schema": schemas.LAB_GRADES,
        "lab": lab.id,
        "tasks": [{"number": 0, "title": "the module builds, loads and unloads", "points": lab.load_points}]
        + [{"number": t.number, "title": t.title, "points": t.points} for t in lab.tasks],
        "max": lab.max_points,
        "students": sorted(students, key=lambda d: d["student"]),
    }


def merge_docs(docs: list[dict], sources: list[str] | None = None) -> dict:
    """One report from shard reports of the same lab; a student graded twice is an error."""
    if not docs:
        raise UserError("error: nothing to merge. Fix: pass the shards' JSON reports.")
    names = sources or [f"report #{i + 1}" for i in range(len(docs))]
    first = docs[0]
    seen: dict[str, str] = {}
    students = []
    for doc, name in zip(docs, names):
        if doc.get("schema") != schemas.LAB_GRADES and doc.get("format") != OLD_REPORT_FORMAT:
            raise UserError(f"{name}: error: not a dbgscaffold lab report (schema {doc.get('schema')!r}). Fix: pass the .json written by 'lab grade'.")
        if doc["lab"] != first["lab"] or doc["tasks"] != first["tasks"]:
            raise UserError(f"{name}: error: a report of lab {doc['lab']!r}, not {first['lab']!r} (or other tasks). Fix: merge one lab's shards.")
        for s in doc["students"]:
            if s["student"] in seen:
                raise UserError(f"{name}: error: {s['student']!r} is also in {seen[s['student']]}. Fix: shards must not overlap.")
            seen[s["student"]] = name
            students.append(s)
    return {**first, "students": sorted(students, key=lambda d: d["student"])}


def _num(x: float) -> str:
    return f"{x:g}"


def csv_text(doc: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    numbers = [str(t["number"]) for t in doc["tasks"]]
    w.writerow(["student", *(f"task {n}" for n in numbers), "total", "max", "verdict", "exit", "findings"])
    for s in doc["students"]:
        w.writerow([s["student"], *(_num(s["tasks"].get(n, 0)) for n in numbers), _num(s["total"]), _num(s["max"]), s["verdict"], s["exit"],
                    "; ".join(s.get("findings", ()))])
    return out.getvalue()


def write_reports(doc: dict, csv_path: Path) -> Path:
    """FILE.csv and FILE.json beside it; returns the JSON path."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(csv_path, csv_text(doc).encode())
    json_path = csv_path.with_suffix(".json")
    atomic_write(json_path, (json.dumps(doc, indent=2) + "\n").encode())
    return json_path


def read_report(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: error: not a readable JSON report ({exc}). Fix: pass the .json written by 'lab grade'.") from None


# ---------------------------------------------------------------- CI (pure)


GRADER = "/opt/dbgscaffold/bin/dbgscaffold"  # where the workflows install dbgscaffold
MERGER = "/tmp/dbgscaffold/bin/dbgscaffold"


def shard_command(lab_id: str, submissions: str, kernel: str, jobs: int, k: str, n: str) -> str:
    """What runner K of N runs (the same in every CI variant; tests run exactly this)."""
    return (f"{GRADER} lab grade {shlex.quote(submissions)} --lab {shlex.quote(lab_id)} --kernel {shlex.quote(kernel)} --jobs {jobs} "
            f"--shard {k}/{n} --out shard-{k}.csv")


def merge_command() -> str:
    return f"{MERGER} lab merge shard-*.json --out grades.csv"


# One command a line, no continuations: GitLab runs each `script:` item on its own.
_INSTALL = """echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
apt-get update
apt-get install -y --no-install-recommends {packages}
apt-get install -y --no-install-recommends -t bookworm-backports linux-image-amd64 linux-headers-amd64
python3 -m venv /opt/dbgscaffold
/opt/dbgscaffold/bin/pip install {install}"""
_PACKAGES = "python3-venv git build-essential qemu-system-x86 busybox-static bubblewrap linux-image-amd64 linux-headers-amd64 binutils zstd"


def _indented(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def workflow_yaml(lab_id: str, shards: int, install: str, submissions: str = "submissions", kernel: str = "6.1", jobs: int = 2) -> str:
    """A GitHub Actions workflow: a matrix of runners grades one shard each, a last
    job merges their JSON reports into grades.csv and grades.json."""
    shard_list = ", ".join(str(i) for i in range(1, shards + 1))
    k = "${{ matrix.shard }}"
    return f"""# Generated by dbgscaffold: grade lab {lab_id} across {shards} runners.
# Runner K grades submissions K, K+{shards}, K+{2 * shards}, ... of the sorted list (--shard K/{shards}); the last job merges.
name: grade {lab_id}

on:
  workflow_dispatch:
  push:
    paths:
      - "{submissions}/**"

permissions:
  contents: read  # the jobs read the repository; the reports go out as artifacts

jobs:
  grade:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    container:
      image: debian:bookworm
      options: --privileged  # bubblewrap's namespaces for the sandboxed builds, and /dev/kvm where the runner has it
    strategy:
      fail-fast: false
      matrix:
        shard: [{shard_list}]
    steps:
      - uses: actions/checkout@v4
      - name: Install the lab kernels, QEMU and dbgscaffold
        run: |
{_indented(_INSTALL.format(install=shlex.quote(install), packages=_PACKAGES), " " * 10)}
      - name: Grade shard {k}/{shards}
        run: {shard_command(lab_id, submissions, kernel, jobs, k, str(shards))}
      - uses: actions/upload-artifact@v4
        with:
          name: shard-{k}
          path: shard-{k}.*

  merge:
    needs: grade
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4  # --install may name a wheel in the repository
      - uses: actions/download-artifact@v4
        with:
          pattern: shard-*
          merge-multiple: true
      - name: Merge the shards
        run: |
          python3 -m venv /tmp/dbgscaffold
          /tmp/dbgscaffold/bin/pip install {shlex.quote(install)}
          {merge_command()}
      - uses: actions/upload-artifact@v4
        with:
          name: grades
          path: grades.*
"""


def gitlab_ci_yaml(lab_id: str, shards: int, install: str, submissions: str = "submissions", kernel: str = "6.1", jobs: int = 2) -> str:
    """The same for GitLab CI: `parallel: N` grade jobs (CI_NODE_INDEX of CI_NODE_TOTAL), then a merge job."""
    return f"""# Generated by dbgscaffold: grade lab {lab_id} across {shards} runners (GitLab CI).
# Job K of the parallel grade jobs grades submissions K, K+{shards}, ... of the sorted list; the merge job merges.
stages: [grade, merge]

grade:
  stage: grade
  image: debian:bookworm
  parallel: {shards}
  timeout: 60m
  rules:
    - changes: ["{submissions}/**/*"]
    - when: manual
  script:
{_indented(_INSTALL.format(install=shlex.quote(install), packages=_PACKAGES), "    - ")}
    - {shard_command(lab_id, submissions, kernel, jobs, "$CI_NODE_INDEX", "$CI_NODE_TOTAL")}
  artifacts:
    paths: [shard-*.csv, shard-*.json]

merge:
  stage: merge
  image: debian:bookworm
  needs: [grade]
  script:
    - apt-get update && apt-get install -y --no-install-recommends python3-venv git
    - python3 -m venv /tmp/dbgscaffold
    - /tmp/dbgscaffold/bin/pip install {shlex.quote(install)}
    - {merge_command()}
  artifacts:
    paths: [grades.csv, grades.json]
"""
