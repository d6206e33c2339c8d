"""Render a validated Spec into a module project with cookiecutter.

`template_model()` is pure: it turns the Spec into what the templates read
(names, include lists, creation calls), so the templates hold all the C and
none of the decisions.  `new_project()` renders beside the destination and
renames into place; `regen_project()` rewrites only the generated files and
never touches the user's own (user/*.c, dbgscaffold.toml).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .debugfs_types import Kind, Writes
from .errors import UserError
from .spec import SPEC_FILE, Entry, Spec, cname_of, load_spec

MANIFEST = ".dbgscaffold-manifest.json"  # what regen owns, with content hashes
MANIFEST_VERSION = 1
USER_DIR = "user"


# ---------------------------------------------------------------------------
# The model the templates read.


@dataclass(frozen=True)
class EntryView:
    entry: Entry
    var: str  # the C name of the backing variable (or function prefix)
    parent_expr: str  # the dentry expression of the parent directory
    create_fn: str = ""
    create_args: tuple[str, ...] = ()
    fops: str = ""
    user_file: str = ""  # user/<cname>.c for seq and custom entries
    state_size: int = 0  # custom: the starting buffer size in the user file

    def __getattr__(self, name: str):
        # Templates read entry fields (path, type, value, ...) straight through.
        return getattr(self.entry, name)

    @property
    def kind(self) -> str:
        return self.entry.type.kind.value

    @property
    def readable(self) -> bool:
        return bool(self.entry.mode and self.entry.mode & 0o444)

    @property
    def writable(self) -> bool:
        return bool(self.entry.mode and self.entry.mode & 0o222)


@dataclass(frozen=True)
class DirView:
    path: str
    basename: str
    var: str  # "" when nothing is created inside it (no variable needed)
    parent_expr: str


@dataclass(frozen=True)
class FopsView:
    name: str
    read: bool
    write: bool


@dataclass(frozen=True)
class TemplateModel:
    name: str
    guard: str
    module: object
    dirs: tuple[DirView, ...]
    files: tuple[EntryView, ...]
    includes: tuple[str, ...]
    textbuf_fops: tuple[FopsView, ...]
    table: tuple[dict, ...]
    examples: tuple[str, ...]
    textbuf_read: bool = False
    textbuf_write: bool = False

    def _kind(self, kind: Kind) -> tuple[EntryView, ...]:
        return tuple(f for f in self.files if f.entry.type.kind is kind)

    @property
    def scalars(self):
        return tuple(f for f in self.files if f.entry.type.kind in (Kind.INTEGER, Kind.BOOL))

    @property
    def blobs(self):
        return self._kind(Kind.BLOB)

    @property
    def strings(self):
        return self._kind(Kind.STRING)

    @property
    def arrays(self):
        return self._kind(Kind.U32_ARRAY)

    @property
    def seqs(self):
        return self._kind(Kind.SEQ)

    @property
    def customs(self):
        return self._kind(Kind.CUSTOM)

    @property
    def user_entries(self):
        return tuple(f for f in self.files if f.user_file)


def _dir_var(path: str) -> str:
    return f"dir_{cname_of(path)}"


def _textbuf_fops_name(entry: Entry) -> str:
    read, write = bool(entry.mode & 0o444), bool(entry.mode & 0o222)
    return {(True, True): "textbuf_fops", (True, False): "textbuf_ro_fops"}.get((read, write), "textbuf_wo_fops")


def _value_text(entry: Entry) -> str:
    """How the initial value reads back, for the README table."""
    kind, value = entry.type.kind, entry.value
    if kind is Kind.BOOL:
        return "`Y`" if value else "`N`"
    if kind is Kind.INTEGER:
        return "`" + entry.type.read_format.format(value).strip() + "`"
    if kind in (Kind.BLOB, Kind.STRING, Kind.CUSTOM):
        text = value.decode(errors="replace")
        return "`" + text.replace("\n", "\\n").replace("|", "\\|").replace("`", "'") + "`" if text else "(empty)"
    if kind is Kind.U32_ARRAY:
        full = list(value) + [0] * (entry.length - len(value))
        shown = " ".join(map(str, full[:8])) + (" ..." if len(full) > 8 else "")
        return f"`{shown}`"
    return ""


def _example_commands(spec: Spec) -> tuple[str, ...]:
    root = f"/sys/kernel/debug/{spec.module.root}"
    lines = []
    for e in spec.files:
        path = f"{root}/{e.path}"
        if e.mode & 0o444:
            lines.append(f"sudo cat {path}")
        if e.mode & 0o222 and e.type.writes is Writes.YES:
            sample = {Kind.BOOL: "N", Kind.STRING: "hello", Kind.CUSTOM: "hello"}.get(e.type.kind, "7")
            lines.append(f"echo {sample} | sudo tee {path}")
    return tuple(lines[:12])


def template_model(spec: Spec) -> TemplateModel:
    name = spec.module.name
    root_expr = f"{name}_root"
    # A directory needs a variable when anything, file or subdirectory, is created in it.
    dirs_with_children = {p.rsplit("/", 1)[0] for p in (*spec.directories, *(e.path for e in spec.files)) if "/" in p}
    dirs = tuple(
        DirView(
            path=d,
            basename=d.rsplit("/", 1)[-1],
            var=_dir_var(d) if d in dirs_with_children else "",
            parent_expr=_dir_var(d.rsplit("/", 1)[0]) if "/" in d else root_expr,
        )
        for d in spec.directories
    )
    files = []
    for e in spec.files:
        var = f"{name}_{e.cname}"
        parent = _dir_var(e.parent) if e.parent else root_expr
        kind = e.type.kind
        head = [f'"{e.basename}"', e.mode_octal, parent]
        extra: dict = {}
        if kind in (Kind.INTEGER, Kind.BOOL):
            call = (e.type.helper, (*head, f"&{var}"))
        elif kind is Kind.BLOB:
            call = ("debugfs_create_blob", (*head, f"&{var}"))
        elif kind is Kind.U32_ARRAY:
            call = (f"{name}_create_u32_array", (*head, f"&{var}"))
        elif kind is Kind.STRING:
            extra["fops"] = _textbuf_fops_name(e)
            call = ("debugfs_create_file", (*head, f"&{var}", f"&{extra['fops']}"))
        else:  # seq, custom: user-owned code, no data pointer
            extra["user_file"] = f"{USER_DIR}/{e.cname}.c"
            call = ("debugfs_create_file", (*head, "NULL", f"&{var}_fops"))
            if kind is Kind.CUSTOM:
                extra["state_size"] = max(64, len(e.value) + 1)
        files.append(EntryView(e, var, parent, create_fn=call[0], create_args=call[1], **extra))

    strings = [f for f in files if f.entry.type.kind is Kind.STRING]
    fops = {}
    for f in strings:
        fops.setdefault(f.fops, FopsView(f.fops, f.readable, f.writable))
    kinds = {f.entry.type.kind for f in files}
    includes = {"debugfs", "init", "module", "types"}
    if Kind.STRING in kinds:
        includes |= {"fs", "mutex", "slab", "string", "uaccess"}
    if kinds & {Kind.SEQ, Kind.CUSTOM}:
        includes.add("fs")
    if any(f.entry.type.name == "atomic_t" for f in files):
        includes.add("atomic")
    if Kind.U32_ARRAY in kinds:
        includes.add("kernel")  # ARRAY_SIZE
    table = tuple(
        {
            "path": e.path + ("/" if e.type.kind is Kind.DIR else ""),
            "type": e.type.name,
            "mode": e.mode_octal or "0755",
            "value": _value_text(e),
            "note": e.type.note,
        }
        for e in spec.entries
    )
    return TemplateModel(
        name=name,
        guard=name.upper(),
        module=spec.module,
        dirs=dirs,
        files=tuple(files),
        includes=tuple(sorted(includes)),
        textbuf_fops=tuple(fops.values()),
        table=table,
        examples=_example_commands(spec),
        textbuf_read=any(f.read for f in fops.values()),
        textbuf_write=any(f.write for f in fops.values()),
    )


# ---------------------------------------------------------------------------
# Templates and cookiecutter.


def templates_root() -> Path:
    """module_templates/, inside the installed package or beside generator/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "module_templates", here.parent / "module_templates"):
        if (candidate / "module").is_dir():
            return candidate
    raise UserError(f"dbgscaffold is installed without its templates (looked in {here}); reinstall it.")


def _render_template(template: str, context: dict, output_dir: Path) -> Path:
    from cookiecutter.generate import generate_files  # heavy: keep --help fast

    out = generate_files(
        repo_dir=str(templates_root() / template),
        context={"cookiecutter": context},
        output_dir=str(output_dir),
        overwrite_if_exists=True,
        accept_hooks=False,
    )
    return Path(out)


def _context(model: TemplateModel, **extra) -> dict:
    return {
        "name": model.name,
        "_model": model,
        "_extensions": ["dbgscaffold.c_literals.CLiteralsExtension"],
        **extra,
    }


def render_tree(spec: Spec, staging: Path) -> tuple[Path, list[str], list[str]]:
    """Render every file of the project into staging/<name>/.

    Returns the project directory, the generated files and the user files
    (paths relative to the project).
    """
    model = template_model(spec)
    project = _render_template("module", _context(model), staging)
    generated = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    user_files = []
    for view in model.user_entries:
        ctx = _context(model, _entry={"file": Path(view.user_file).name, **_entry_dict(view)})
        _render_template("user_file", ctx, staging)
        user_files.append(view.user_file)
    (project / SPEC_FILE).write_text(spec.text, encoding="utf-8")
    return project, generated, user_files


def _entry_dict(view: EntryView) -> dict:
    return {
        "path": view.entry.path,
        "basename": view.entry.basename,
        "kind": view.kind,
        "var": view.var,
        "value": view.entry.value if view.entry.value is not None else b"",
        "readable": view.readable,
        "writable": view.writable,
        "state_size": view.state_size,
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_manifest(project: Path, name: str, generated: list[str]) -> None:
    data = {
        "format": MANIFEST_VERSION,
        "module": name,
        "generated": {f: _sha256(project / f) for f in generated},
    }
    (project / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------
# new


@dataclass
class RenderResult:
    project: Path
    generated: list[str]
    user_files: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # user files left as they were
    orphaned: list[str] = field(default_factory=list)  # user files no entry uses any more


def new_project(spec: Spec, dest: Path, force: bool = False) -> RenderResult:
    """Render the project into `dest` atomically: all of it or nothing."""
    dest = Path(os.path.abspath(dest))
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: error: exists and is not a directory. Fix: choose another output with -o.")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise UserError(
            f"{dest}: error: directory exists and is not empty. "
            "Fix: choose another output with -o, or pass --force to replace its contents."
        )
    created_parents = []
    parent = dest.parent
    while not parent.exists():
        created_parents.append(parent)
        parent = parent.parent
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.dbgscaffold-", dir=dest.parent))
    except OSError as exc:
        raise UserError(f"{dest.parent}: error: cannot create the output directory: {exc.strerror}.") from None
    try:
        project, generated, user_files = render_tree(spec, staging)
        _write_manifest(project, spec.module.name, generated)
        if dest.exists():
            old = staging / ".replaced"
            os.rename(dest, old)
            os.rename(project, dest)
        else:
            os.rename(project, dest)
    except OSError as exc:
        for p in created_parents:
            shutil.rmtree(p, ignore_errors=True)
        raise UserError(f"{dest}: error: cannot write the project: {exc.strerror}.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RenderResult(dest, generated, user_files)


# ---------------------------------------------------------------------------
# regen


def _read_manifest(project: Path) -> dict:
    path = project / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{project}: error: not a dbgscaffold project ({MANIFEST} is missing). "
            "Fix: run regen in a directory made by 'dbgscaffold new'."
        ) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: error: unreadable manifest ({exc}). Fix: restore it from version control.") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_VERSION or not isinstance(data.get("generated"), dict):
        raise UserError(f"{path}: error: unknown manifest format. Fix: restore it, or regenerate with 'dbgscaffold new --force'.")
    return data


def regen_project(project: Path, force: bool = False) -> RenderResult:
    """Re-render the generated files of `project` from its dbgscaffold.toml."""
    project = Path(os.path.abspath(project))
    if not project.is_dir():
        raise UserError(f"{project}: error: no such directory. Fix: pass the module's directory.")
    manifest = _read_manifest(project)
    spec = load_spec(project / SPEC_FILE)
    if manifest.get("module") != spec.module.name:
        raise UserError(
            f"{project / SPEC_FILE}: error: the module name changed from '{manifest.get('module')}' to "
            f"'{spec.module.name}'; regen keeps names stable. Fix: put the old name back, or run "
            f"'dbgscaffold new --spec {SPEC_FILE} -o NEWDIR' for a new module."
        )
    old_generated: dict[str, str] = manifest["generated"]
    edited = [
        f for f, digest in old_generated.items() if (project / f).is_file() and _sha256(project / f) != digest
    ]
    if edited and not force:
        raise UserError(
            f"{project}: error: generated files were edited by hand: {', '.join(sorted(edited))}. "
            "Fix: move your changes into user/ or the spec, or pass --force to overwrite them."
        )
    with tempfile.TemporaryDirectory(prefix=".dbgscaffold-regen-", dir=project.parent) as tmp:
        staged, generated, user_files = render_tree(spec, Path(tmp))
        result = RenderResult(project, generated)
        for rel in generated:
            target = project / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / rel, target)  # atomic per file
        for rel in user_files:
            target = project / rel
            if target.exists():
                result.kept.append(rel)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged / rel, target)
                result.user_files.append(rel)
    for rel in sorted(set(old_generated) - set(generated)):
        (project / rel).unlink(missing_ok=True)
        result.removed.append(rel)
    wanted = set(user_files)
    user_dir = project / USER_DIR
    if user_dir.is_dir():
        result.orphaned = sorted(
            p.relative_to(project).as_posix() for p in user_dir.glob("*.c") if p.relative_to(project).as_posix() not in wanted
        )
    _write_manifest(project, spec.module.name, generated)
    return result

