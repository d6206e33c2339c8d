"""Read and validate a lab: lab.toml, its solution sources and its checks.

Pure: parse_manifest(), parse_check_header(). Edges: load_lab(), discover().
Every problem names file:line, what is wrong and the fix (spec.Problem);
a lab that does not load is reported, never a traceback.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import UserError
from ..paths import templates_root
from ..problems import Problem, syntax_problem
from .skeleton import SkeletonError, TodoRegion, skeleton_text

MANIFEST = "lab.toml"
CHECK_LIB = "lib.sh"  # checks/lib.sh: shell functions sourced before each check (not a check itself)
KINDS = ("module", "systemtap")
SOURCE_SUFFIXES = (".c", ".h", ".stp", ".sh")  # solution files with TODO markers (C, SystemTap, shell scripts)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_HEADER = re.compile(r"^#\s*(task|title)\s*:\s*(.*?)\s*$")
_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


class LabError(UserError):
    """A lab's files are invalid: every problem, one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        n = len(problems)
        super().__init__("\n".join([*map(str, problems), f"{n} error{'s' if n != 1 else ''} in the lab"]))


@dataclass(frozen=True)
class Task:
    number: int
    title: str
    points: float


@dataclass(frozen=True)
class LabCheck:
    """One checks/{visible,hidden}/*.sh: the task it scores and its title."""

    path: Path
    task: int
    title: str
    hidden: bool

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Lab:
    id: str
    title: str
    order: int
    module: str
    debugfs_root: str
    summary: str
    kind: str
    load_points: float
    profiles: tuple[str, ...]
    kernels: tuple[str, ...]
    tasks: tuple[Task, ...]
    root: Path  # the lab's folder
    checks: tuple[LabCheck, ...] = ()
    regions: tuple[TodoRegion, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)
    timeout: float | None = None  # seconds a run needs at least (a slow lab: SystemTap under TCG)
    check_timeout: float | None = None  # seconds one check needs at least
    student_files: tuple[str, ...] = ()  # project files the checks run (e.g. a tracing script): in each payload

    @property
    def solution(self) -> Path:
        return self.root / "solution"

    @property
    def readme(self) -> Path:
        return self.root / "README.md"

    @property
    def check_lib(self) -> Path | None:
        """checks/lib.sh, the functions every check of the lab may use, if the lab has one."""
        path = self.root / "checks" / CHECK_LIB
        return path if path.is_file() else None

    @property
    def max_points(self) -> float:
        return self.load_points + sum(t.points for t in self.tasks)

    def task(self, number: int) -> Task | None:
        return next((t for t in self.tasks if t.number == number), None)

    def visible(self) -> tuple[LabCheck, ...]:
        return tuple(c for c in self.checks if not c.hidden)

    def run_checks(self, hidden: bool) -> tuple[LabCheck, ...]:
        """The checks of a run, sorted by file name (visible only unless `hidden`)."""
        chosen = [c for c in self.checks if hidden or not c.hidden]
        return tuple(sorted(chosen, key=lambda c: (c.path.name, c.hidden)))


# ---------------------------------------------------------------- locating lines (pure)


def _lines_of(text: str) -> dict[tuple[str, int], dict[str, int]]:
    """(table, index) -> {key: line, "": header line}; top-level keys under ("", 0)."""
    out: dict[tuple[str, int], dict[str, int]] = {("", 0): {"": 1}}
    seen: dict[str, int] = {}
    current = ("", 0)
    for number, line in enumerate(text.splitlines(), 1):
        m = _TABLE.match(line)
        if m:
            name = m.group(2)
            index = seen.get(name, -1) + 1 if m.group(1) == "[[" else 0
            seen[name] = index
            current = (name, index)
            out[current] = {"": number}
            continue
        k = _KEY.match(line)
        if k:
            out[current].setdefault(k.group(1), number)
    return out


# ---------------------------------------------------------------- the manifest (pure)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_manifest(text: str, source: str, folder: Path) -> Lab:
    """lab.toml text -> Lab (without checks and regions); LabError lists every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LabError([syntax_problem(source, exc)]) from None
    where = _lines_of(text)
    problems: list[Problem] = []

    def err(table: tuple[str, int], key: str, what: str, message: str, fix: str) -> None:
        keys = where.get(table, {})
        problems.append(Problem(source, keys.get(key, keys.get("", 1)), what, message, fix))

    lab = data.get("lab")
    if not isinstance(lab, dict):
        err(("", 0), "", "", "no [lab] table", 'add [lab] with id, title, module (see docs/labs-format.md).')
        raise LabError(problems)
    L = ("lab", 0)
    for key in data:
        if key not in ("lab", "requires", "task") and not isinstance(data[key], dict):
            err(("", 0), key, "", f"unknown top-level key {key!r}", "use [lab], [requires] and [[task]].")
    known = {"id", "title", "order", "module", "debugfs_root", "summary", "kind", "load_points", "timeout", "check_timeout",
             "student_files"}
    for key in lab:
        if key not in known:
            err(L, key, "[lab]", f"unknown key {key!r}", f"use one of: {', '.join(sorted(known))}.")
    lab_id = lab.get("id")
    if not isinstance(lab_id, str) or not _ID.match(lab_id):
        err(L, "id", "[lab]", f"id must be a lower-case name like 'debugfs-basics', not {lab_id!r}", f'id = "{folder.name}"')
    elif lab_id != folder.name:
        err(L, "id", "[lab]", f"id {lab_id!r} differs from the folder name {folder.name!r}", f'id = "{folder.name}" (or rename the folder)')
    for key in ("title", "summary"):
        if not isinstance(lab.get(key, ""), str) or (key == "title" and not lab.get(key)):
            err(L, key, "[lab]", f"{key} must be a non-empty string", f'{key} = "..."')
    kind = lab.get("kind", "module")
    if kind not in KINDS:
        err(L, "kind", "[lab]", f"unknown kind {kind!r}", f"use one of: {', '.join(KINDS)}.")
    module = lab.get("module", "")
    if kind == "module" and (not isinstance(module, str) or not _IDENT.match(module)):
        err(L, "module", "[lab]", f"module must be the .ko's name (a C identifier), not {module!r}", 'module = "mydebug"')
    root = lab.get("debugfs_root", "")
    if not isinstance(root, str) or root.startswith("/") or ".." in root.split("/"):
        err(L, "debugfs_root", "[lab]",
            f"debugfs_root must be a relative path under /sys/kernel/debug, not {root!r}", 'debugfs_root = "mydebug" (or "" for none)')
    order = lab.get("order", 100)
    if not isinstance(order, int) or isinstance(order, bool):
        err(L, "order", "[lab]", f"order must be an integer, not {order!r}", "order = 1")
    for key in ("timeout", "check_timeout"):
        if key in lab and (not _num(lab[key]) or lab[key] <= 0):
            err(L, key, "[lab]", f"{key} must be a number of seconds > 0, not {lab[key]!r}", f"{key} = 120")
    load_points = lab.get("load_points", 1)
    if not _num(load_points) or load_points < 0:
        err(L, "load_points", "[lab]", f"load_points must be a number >= 0, not {load_points!r}", "load_points = 1")
    student_files = lab.get("student_files", [])
    if not isinstance(student_files, list) or not all(isinstance(x, str) and x for x in student_files):
        err(L, "student_files", "[lab]", f"student_files must be a list of file names in solution/, not {student_files!r}", 'student_files = ["trace.sh"]')
        student_files = []
    for name in student_files:
        if name.startswith("/") or ".." in name.split("/"):
            err(L, "student_files", "[lab]", f"student_files: {name!r} must be a path relative to solution/", 'student_files = ["trace.sh"]')
    if student_files and kind != "module":
        err(L, "student_files", "[lab]", f"student_files is for labs of kind \"module\"; a {kind!r} lab's helper ships its own files",
            "remove it (a systemtap lab lists its scripts in [systemtap] scripts)")

    req = data.get("requires", {})
    R = ("requires", 0)
    profiles: tuple[str, ...] = ()
    kernels: tuple[str, ...] = ()
    if not isinstance(req, dict):
        err(("", 0), "requires", "", "requires must be a table", '[requires] profiles = ["debugfs"]')
    else:
        for key in req:
            if key not in ("profiles", "kernels"):
                err(R, key, "[requires]", f"unknown key {key!r}", "use profiles and kernels.")
        p = req.get("profiles", [])
        if not isinstance(p, list) or not all(isinstance(x, str) for x in p):
            err(R, "profiles", "[requires]", "profiles must be a list of profile names", 'profiles = ["debugfs"]')
        else:
            profiles = tuple(p)
            from ..kconfig.profiles import available_profiles

            known_profiles = available_profiles()
            for name in profiles:
                if name not in known_profiles:
                    err(R, "profiles", "[requires]", f"no profile {name!r} in kernel_configs/", f"use one of: {', '.join(known_profiles)}.")
        k = req.get("kernels", [])
        if not isinstance(k, list) or not all(isinstance(x, str) and re.match(r"^\d+\.\d+$", x) for x in k):
            err(R, "kernels", "[requires]", "kernels must be a list of series like \"6.1\"", 'kernels = ["6.1", "6.12"]')
        else:
            kernels = tuple(k)

    tasks: list[Task] = []
    raw_tasks = data.get("task", [])
    if not isinstance(raw_tasks, list) or not raw_tasks:
        err(("", 0), "task", "", "a lab needs at least one [[task]]", "add [[task]] number = 1, title = \"...\", points = 1")
        raw_tasks = []
    for i, t in enumerate(raw_tasks):
        T = ("task", i)
        what = f"task #{i + 1}"
        if not isinstance(t, dict):
            continue
        for key in t:
            if key not in ("number", "title", "points"):
                err(T, key, what, f"unknown key {key!r}", "use number, title and points.")
        number, title, points = t.get("number"), t.get("title"), t.get("points", 1)
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            err(T, "number", what, f"number must be an integer >= 1 (task 0 is the load/unload), not {number!r}", f"number = {i + 1}")
            continue
        if any(x.number == number for x in tasks):
            err(T, "number", what, f"task {number} is declared twice", "number the tasks 1, 2, 3 ...")
        if not isinstance(title, str) or not title:
            err(T, "title", what, "title must be a non-empty string", 'title = "..."')
        if not _num(points) or points <= 0:
            err(T, "points", what, f"points must be a number > 0, not {points!r}", "points = 2")
            points = 0
        tasks.append(Task(number, str(title or ""), float(points)))
    if problems:
        raise LabError(problems)
    extra = {k: v for k, v in data.items() if k not in ("lab", "requires", "task")}
    assert isinstance(lab_id, str)  # else a problem was raised above
    return Lab(
        id=lab_id, title=lab["title"], order=order, module=module or "", debugfs_root=root, summary=lab.get("summary", ""),
        kind=kind, load_points=float(load_points), profiles=profiles, kernels=kernels,
        tasks=tuple(sorted(tasks, key=lambda t: t.number)), root=folder, extra=extra,
        timeout=float(lab["timeout"]) if "timeout" in lab else None,
        check_timeout=float(lab["check_timeout"]) if "check_timeout" in lab else None,
        student_files=tuple(student_files),
    )


def parse_check_header(text: str, source: str) -> tuple[int | None, str, list[Problem]]:
    """The `# task: N` and `# title: ...` lines among a check's leading comments."""
    task, title, problems = None, "", []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("#"):
            if line.strip():
                break
            continue
        m = _HEADER.match(line)
        if not m:
            continue
        if m.group(1) == "title":
            title = m.group(2)
        elif re.fullmatch(r"\d+", m.group(2)):
            task = int(m.group(2))
        else:
            problems.append(Problem(source, number, "", f"'# task:' needs a task number, not {m.group(2)!r}", "# task: 1"))
    if task is None and not problems:
        problems.append(Problem(source, 1, "", "no '# task: N' line among the first comment lines", "start the check with '# task: N' and '# title: ...'"))
    return task, title, problems


# ---------------------------------------------------------------- the whole lab (edge)


def solution_sources(solution: Path) -> list[Path]:
    """The solution's C sources and headers, relative, sorted."""
    return sorted(p.relative_to(solution) for p in solution.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES)


def load_lab(folder: Path) -> Lab:
    """Read and cross-check a lab folder: manifest, solution TODO regions, checks."""
    folder = Path(folder)
    source = str(folder / MANIFEST)
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError([Problem(source, 0, "", f"cannot read the manifest: {exc}", "restore lab.toml")]) from None
    lab = parse_manifest(text, source, folder)
    problems: list[Problem] = []
    where = _lines_of(text)
    regions: list[TodoRegion] = []
    if not lab.solution.is_dir():
        problems.append(Problem(str(lab.solution), 0, "", "no solution/ folder", "add the working sources (Kbuild, *.c; or *.stp) with TODO markers"))
    else:
        if lab.kind == "module" and not (lab.solution / "Kbuild").is_file() and not (lab.solution / "Makefile").is_file():
            problems.append(Problem(str(lab.solution), 0, "", "no Kbuild or Makefile in solution/", f"add a Kbuild with obj-m := {lab.module}.o"))
        for rel in solution_sources(lab.solution):
            path = lab.solution / rel
            try:
                _, found = skeleton_text(path.read_text(encoding="utf-8"), str(path))
            except SkeletonError as exc:
                problems += exc.problems
                continue
            regions += [replace(r, file=str(rel)) for r in found]
        for name in lab.student_files:
            if not (lab.solution / name).is_file():
                problems.append(Problem(source, where.get(("lab", 0), {}).get("student_files", 1), "[lab]",
                                        f"student_files: no file {lab.solution / name}",
                                        f"add solution/{name} (the working version, with TODO markers), or remove {name!r} from student_files"))
    checks: list[LabCheck] = []
    for hidden in (False, True):
        d = folder / "checks" / ("hidden" if hidden else "visible")
        for p in sorted(d.glob("*.sh")) if d.is_dir() else []:
            if p.name == CHECK_LIB:  # its guest path would be the shared library's
                problems.append(Problem(str(p), 0, "", f"a check may not be named {CHECK_LIB}: that is the name of the checks' shared library",
                                        f"rename it (e.g. 15-lib.sh), or move shared functions to {folder / 'checks' / CHECK_LIB}"))
                continue
            task, title, probs = parse_check_header(p.read_text(encoding="utf-8", errors="replace"), str(p))
            problems += probs
            if task is None:
                continue
            if task != 0 and lab.task(task) is None:
                declared = ", ".join(str(t.number) for t in lab.tasks)
                problems.append(Problem(str(p), 1, "", f"task {task} is not declared in {MANIFEST}",
                                        f"use one of: {declared}, or add a [[task]] number = {task}"))
            checks.append(LabCheck(p, task, title or p.stem, hidden))
    names = [c.name for c in checks]
    for c in checks:
        if names.count(c.name) > 1 and c.hidden:
            problems.append(Problem(str(c.path), 0, "", f"a visible check has the same file name {c.name!r}", "rename one: checks run sorted by file name"))
    for i, t in enumerate(lab.tasks):
        tline = where.get(("task", i), {}).get("", 1)
        mine = [c for c in checks if c.task == t.number]
        if not any(not c.hidden for c in mine):
            problems.append(Problem(source, tline, f"task {t.number}", "no visible check scores this task",
                                    f"add checks/visible/NN-name.sh starting with '# task: {t.number}'"))
        if lab.solution.is_dir() and not any(r.task == t.number for r in regions):
            problems.append(Problem(source, tline, f"task {t.number}", "no TODO region in solution/ for this task",
                                    f"mark its code with /* TODO {t.number}: ... */ ... /* END TODO {t.number} */"))
    for r in regions:
        if lab.task(r.task) is None:
            problems.append(Problem(str(lab.solution / r.file), r.start, "", f"TODO {r.task} has no [[task]] in {MANIFEST}",
                                    f"add [[task]] number = {r.task} or renumber the marker"))
    if problems:
        raise LabError(problems)
    return replace(lab, checks=tuple(checks), regions=tuple(regions))


def labs_root() -> Path:
    return templates_root() / "labs"


@dataclass(frozen=True)
class Discovered:
    labs: tuple[Lab, ...]  # sorted by order, then id
    broken: tuple[tuple[str, LabError], ...]  # (folder name, its problems)


def discover(root: Path | None = None) -> Discovered:
    """Every folder with a lab.toml under `root` (default: the shipped labs)."""
    root = Path(root) if root is not None else labs_root()
    labs, broken = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if not (folder / MANIFEST).is_file():
            continue
        try:
            labs.append(load_lab(folder))
        except LabError as exc:
            broken.append((folder.name, exc))
    return Discovered(tuple(sorted(labs, key=lambda lab: (lab.order, lab.id))), tuple(broken))


def find_lab(lab_id: str, root: Path | None = None) -> Lab:
    """The lab `lab_id`, or a UserError naming the known ones (or its own problems)."""
    found = discover(root)
    for lab in found.labs:
        if lab.id == lab_id:
            return lab
    for name, exc in found.broken:
        if name == lab_id:
            raise exc
    known = ", ".join(lab.id for lab in found.labs) or "none"
    raise UserError(f"error: no lab {lab_id!r}. Fix: use one of: {known} (see 'dbgscaffold lab list').")
