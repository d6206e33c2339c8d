"""Render a validated Spec into a module project with cookiecutter.

`template_model()` is pure: it turns the Spec into what the templates read
(names, include lists, creation calls), so the templates hold all the C and
none of the decisions.  `new_project()` renders beside the destination and
renames into place; `regen_project()` rewrites only the generated files and
never touches the user's own (user/*.c, dbgscaffold.toml).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import kbuild_edit, schemas
from .errors import EnvironmentProblem, UserError
from .kbuild import module_makefile
from .kinds import KINDS
from .paths import atomic_write, templates_root
from .spec import SPEC_FILE, load_spec
from .spec_model import Entry, Kind, ModuleInfo, Spec

if TYPE_CHECKING:
    from jinja2 import Environment

MANIFEST = ".dbgscaffold-manifest.json"  # what regen owns, with content hashes
OLD_MANIFEST_FORMAT = 1  # a project generated before the schema key: read alike
USER_DIR = "user"


# ---------------------------------------------------------------------------
# The model the templates read.


@dataclass(frozen=True)
class EntryView:
    """An entry as its kind's snippet reads it: the entry's own fields and params,
    its C names, and what its kind computed for the snippet (template_fields)."""

    entry: Entry
    var: str  # the C name of the backing variable (or function prefix)
    parent_expr: str  # the dentry expression of the parent directory
    create_fn: str
    create_args: tuple[str, ...]
    user_file: str = ""  # user/<cname>.c when the kind has user code
    state_size: int = 0  # the starting buffer of the user code
    fields: Mapping[str, object] = field(default_factory=dict)

    def __getattr__(self, name: str) -> object:
        # Templates read entry fields (path, type, value, ...) and the kind's params straight through.
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self.fields:
            return self.fields[name]
        params = dict(self.entry.params)
        if name in params:
            return params[name]
        return getattr(self.entry, name)


@dataclass(frozen=True)
class KindGroup:
    """The files of one kind, in spec order: what its snippet declares together."""

    kind: Kind
    entries: tuple[EntryView, ...]


@dataclass(frozen=True)
class DirView:
    path: str
    basename: str
    var: str  # "" when nothing is created inside it (no variable needed)
    parent_expr: str


@dataclass(frozen=True)
class TemplateModel:
    name: str
    guard: str
    module: ModuleInfo
    tree: Tree  # what <name>_init() creates
    includes: tuple[str, ...]
    table: tuple[dict, ...]
    examples: tuple[str, ...]
    instance: InstanceView | None = None
    standalone: bool = True  # the module's own init/exit; False: added --into someone's module

    @property
    def dirs(self) -> tuple[DirView, ...]:
        return self.tree.dirs

    @property
    def files(self) -> tuple[EntryView, ...]:
        """The module-wide files (a device's are in instance.tree)."""
        return self.tree.files

    @property
    def kinds(self) -> tuple[KindGroup, ...]:
        return self.tree.kinds

    @property
    def dir_vars(self) -> int:
        """The size of d[] in <name>_init()."""
        return self.tree.dir_vars

    @property
    def user_entries(self) -> tuple[EntryView, ...]:
        """Every entry with code of the user's in user/, module-wide and per instance."""
        return tuple(f for f in (*self.files, *(self.instance.tree.files if self.instance else ())) if f.user_file)


def _example_commands(spec: Spec) -> tuple[str, ...]:
    root = f"/sys/kernel/debug/{spec.module.root}"
    lines = []
    for e in spec.files:
        path = f"{root}/{e.path}"
        if e.readable:
            lines.append(f"sudo cat {path}")
        sample = e.kind.sample_write(e)
        if sample is not None:
            lines.append(f"echo {sample} | sudo tee {path}")
    return tuple(lines[:12])


@dataclass(frozen=True)
class Tree:
    """The directories and files one function creates: <name>_init() below `root`,
    <name>_debugfs_add() below a device's `dir`."""

    dirs: tuple[DirView, ...]
    files: tuple[EntryView, ...]
    kinds: tuple[KindGroup, ...]
    dir_vars: int  # the size of its d[]


def _tree(entries: tuple[Entry, ...], directories: tuple[str, ...], top: str, prefix: str, obj: str, user_prefix: str) -> Tree:
    # A directory anything is created in gets d[i]: short names keep every create
    # call within 100 columns whatever the paths.
    files_in = [e for e in entries if not e.kind.directory]
    with_children = [d for d in directories if any(p.startswith(d + "/") for p in (*directories, *(e.path for e in files_in)))]
    dir_var = {d: f"d[{i}]" for i, d in enumerate(with_children)}
    dir_var[""] = top
    dirs = tuple(DirView(path=d, basename=d.rsplit("/", 1)[-1], var=dir_var.get(d, ""), parent_expr=dir_var[d.rsplit("/", 1)[0] if "/" in d else ""])
                 for d in directories)
    files = []
    for e in files_in:
        var = f"{prefix}_{e.cname}"
        parent = dir_var[e.parent]
        fn, args = e.kind.create_call(e, var, parent, obj)
        files.append(EntryView(e, var, parent, fn, args, user_file=f"{USER_DIR}/{user_prefix}{e.cname}.c" if e.kind.user_role else "",
                               state_size=e.kind.user_state_size(e), fields=e.kind.template_fields(e, var)))
    kinds = tuple(KindGroup(k, tuple(f for f in files if f.entry.kind is k)) for k in KINDS if any(f.entry.kind is k for f in files))
    return Tree(dirs, tuple(files), kinds, len(with_children))


@dataclass(frozen=True)
class InstanceView:
    """[instance] as the templates read it."""

    struct: str
    header: str  # the user's header, "" when ours declares the struct
    dir_field: str
    demo: tuple[str, ...]
    tree: Tree
    members: tuple[str, ...]  # of the struct our header declares
    add_setup: tuple[tuple[str, str], ...]
    demo_setup: tuple[tuple[str, str], ...]


def template_model(spec: Spec, standalone: bool = True) -> TemplateModel:
    name = spec.module.name
    tree = _tree(spec.entries, spec.directories, "root", name, "", "")
    instance = None
    if spec.instance is not None:
        i = spec.instance
        itree = _tree(i.entries, i.directories, "dir", f"{name}_{i.struct}", "dev", f"{i.struct}_")
        instance = InstanceView(
            struct=i.struct, header=i.header, dir_field=i.dir_field, demo=i.demo, tree=itree,
            members=tuple(m for f in itree.files for m in f.entry.kind.members(f.entry)),
            add_setup=tuple(x for f in itree.files for x in f.entry.kind.add_setup(f.entry, f.var, "dev")),
            demo_setup=tuple(x for f in itree.files for x in f.entry.kind.demo_setup(f.entry, f.var, "dev")))
    every_file = tree.files + (instance.tree.files if instance else ())
    includes = {"debugfs", "init", "module", "types"}.union(*(f.entry.kind.includes_for(f.entry) for f in every_file))
    if instance is not None and instance.demo:
        includes.add("kernel")  # ARRAY_SIZE
    device = f"{instance.demo[0] if instance and instance.demo else '<device>'}/"
    table = tuple(
        {
            "path": (device if e.instance else "") + e.path + ("/" if e.kind.directory else ""),
            "type": e.type.name,
            "mode": e.mode_octal or e.type.default_mode,
            "value": e.kind.shown_value(e),
            "note": e.type.note,
        }
        for e in (*spec.entries, *(spec.instance.entries if spec.instance else ()))
    )
    return TemplateModel(
        name=name,
        guard=name.upper(),
        module=spec.module,
        tree=tree,
        includes=tuple(sorted(includes)),
        table=table,
        examples=_example_commands(spec),
        instance=instance,
        standalone=standalone,
    )


# ---------------------------------------------------------------------------
# Templates and cookiecutter.


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
        "_extensions": ["dbgscaffold.jinja_ext.CLiteralsExtension"],
        **extra,
    }


def _snippets() -> Environment:
    """The kinds' snippets (module_templates/module/templates), for the files of user/."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined  # heavy: keep --help fast

    return Environment(loader=FileSystemLoader(str(templates_root() / "module" / "templates")), undefined=StrictUndefined,
                       keep_trailing_newline=True, extensions=["dbgscaffold.jinja_ext.CLiteralsExtension"])


def into_files(name: str) -> tuple[str, ...]:
    """What `new --into` adds to someone's module beside user/ and the spec: the C only."""
    return (f"{name}_debugfs.c", f"{name}_debugfs.h", f"{name}_compat.h")


def render_tree(spec: Spec, staging: Path, standalone: bool = True) -> tuple[Path, list[str], list[str]]:
    """Render every file of the project into staging/<name>/ (with standalone=False,
    for `new --into`, the module's C without its init and exit, and nothing else).

    Returns the project directory, the generated files and the user files
    (paths relative to the project).
    """
    model = template_model(spec, standalone)
    project = _render_template("module", _context(model), staging)
    generated = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    if not standalone:
        keep = into_files(spec.module.name)
        for rel in generated:
            if rel not in keep:
                (project / rel).unlink()
        generated = sorted(keep)
    user_files = []
    if model.user_entries:
        template = _snippets().get_template("user_file.c.j2")
        for view in model.user_entries:
            (project / view.user_file).parent.mkdir(exist_ok=True)
            (project / view.user_file).write_text(template.render(m=model, e=view), encoding="utf-8")
            user_files.append(view.user_file)
    (project / SPEC_FILE).write_text(spec.text, encoding="utf-8")
    return project, generated, user_files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_manifest(project: Path, name: str, generated: list[str], into: dict | None = None) -> None:
    data = {
        "schema": schemas.PROJECT_MANIFEST,
        "module": name,
        "generated": {f: _sha256(project / f) for f in generated},
        **({"into": into} if into else {}),
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
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):  # the machine, not the request (exit 4)
            raise EnvironmentProblem(f"{dest}: error: cannot write the project: {exc.strerror}. "
                                     "Fix: free space there, or choose another -o DIR.") from None
        raise UserError(f"{dest}: error: cannot write the project: {exc.strerror}. Fix: choose another -o DIR.") from None
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
    known = data.get("schema") == schemas.PROJECT_MANIFEST or data.get("format") == OLD_MANIFEST_FORMAT if isinstance(data, dict) else False
    if not known or not isinstance(data.get("generated"), dict):
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
    into = manifest.get("into")
    kbuild_text = _into_kbuild(project, into, spec, force) if into else None
    with tempfile.TemporaryDirectory(prefix=".dbgscaffold-regen-", dir=project.parent) as tmp:
        staged, generated, user_files = render_tree(spec, Path(tmp), standalone=not into)
        new_kbuild = kbuild_text(user_files) if kbuild_text is not None else None  # before anything is replaced
        result = RenderResult(project, generated)
        try:
            _replace(project, staged, generated, user_files, result)
            if into and new_kbuild is not None:
                atomic_write(project / into["kbuild"], new_kbuild.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            raise UserError(f"{project}: error: cannot write {exc.filename or 'the files'}: {exc.strerror or exc}. "
                            "Fix: make the project writable (and free space), then run regen again.") from None
    for rel in sorted(set(old_generated) - set(generated)):
        (project / rel).unlink(missing_ok=True)
        result.removed.append(rel)
    wanted = set(user_files)
    user_dir = project / USER_DIR
    if into:  # the user's module may have user/ files of its own: only ours can be orphans
        result.orphaned = sorted(set(into.get("user", [])) - wanted)
        into = {**into, "user": sorted(set(into.get("user", [])) | wanted),
                "block": _digest(kbuild_edit.block_of((project / into["kbuild"]).read_text("utf-8", "surrogateescape")))}
    elif user_dir.is_dir():
        result.orphaned = sorted(
            p.relative_to(project).as_posix() for p in user_dir.glob("*.c") if p.relative_to(project).as_posix() not in wanted
        )
    _write_manifest(project, spec.module.name, generated, into)
    return result


def _replace(project: Path, staged: Path, generated: list[str], user_files: list[str], result: RenderResult) -> None:
    """Move the staged generated files over the project's; user files only where missing."""
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


# ---------------------------------------------------------------------------
# new --into


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _into_kbuild(project: Path, into: dict, spec: Spec, force: bool) -> Callable[[list[str]], str]:
    """How the Kbuild of an --into project reads with our block for a list of user files."""
    kbuild = project / str(into.get("kbuild", ""))
    try:
        text = kbuild.read_text(encoding="utf-8", errors="surrogateescape")  # the owner's bytes come back as they were
    except OSError as exc:
        raise UserError(f"{kbuild}: error: cannot read it ({exc.strerror}). Fix: restore the module's Kbuild.") from None
    if not kbuild_edit.has_block(text):
        raise UserError(f"{kbuild}: error: the dbgscaffold block is gone, so regen cannot keep the object list. "
                        f"Fix: put back the lines from '{kbuild_edit.BEGIN}' to '{kbuild_edit.END}' (version control has them).")
    try:
        block = kbuild_edit.block_of(text)
    except UserError as exc:
        raise UserError(f"{kbuild}: error: {exc}") from None
    if into.get("block") and _digest(block) != into["block"] and not force:
        raise UserError(f"{kbuild}: error: the dbgscaffold block was edited by hand; regen would rewrite it. "
                        "Fix: move your lines out of the block, or pass --force to rewrite it.")
    module = kbuild_edit.find_module(text, str(kbuild), str(into.get("module")))

    def render(user_files: list[str]) -> str:
        return kbuild_edit.with_block(text, module, _objects(spec, user_files))

    return render


def _objects(spec: Spec, user_files: list[str]) -> list[str]:
    return [f"{spec.module.name}_debugfs.o", *(f[:-2] + ".o" for f in user_files)]


def into_project(spec: Spec, dest: Path, module: str | None = None) -> RenderResult:
    """Add the spec's debugfs files to the existing module project `dest`: the C,
    user/ starters, the spec, and our block in its Kbuild (or Makefile). Nothing of
    the user's is overwritten; on any failure nothing is left behind."""
    dest = Path(os.path.abspath(dest))
    kbuild = module_makefile(dest)
    if (dest / MANIFEST).exists():
        raise UserError(f"{dest}: error: dbgscaffold files are already here ({MANIFEST}). Fix: edit {SPEC_FILE} and run 'dbgscaffold regen {dest}'.")
    text = kbuild.read_text(encoding="utf-8", errors="surrogateescape")  # the owner's bytes come back as they were
    if kbuild_edit.has_block(text):
        raise UserError(f"{kbuild}: error: it already has a dbgscaffold block but there is no {MANIFEST}. "
                        "Fix: remove the block (and the files it names), then run new --into again.")
    found = kbuild_edit.find_module(text, str(kbuild), module)
    with tempfile.TemporaryDirectory(prefix=".dbgscaffold-into-", dir=dest.parent) as tmp:
        staged, generated, user_files = render_tree(spec, Path(tmp), standalone=False)
        ours = [*generated, *user_files, SPEC_FILE]
        clash = [rel for rel in ours if (dest / rel).exists() or (dest / rel).is_symlink()]
        clash += [o for o in (f"{Path(f).with_suffix('').as_posix()}.o" for f in (*generated, *user_files)) if o in found.objects]
        if clash:
            fixes = []
            if any(c.startswith(f"{spec.module.name}_") for c in clash):
                fixes.append("give the spec another module name (dbgscaffold new NAME --into DIR)")
            if any(c.startswith(f"{USER_DIR}/") for c in clash):
                fixes.append("rename the entries whose user/ files exist, or move those files away")
            if SPEC_FILE in clash:
                fixes.append(f"move {SPEC_FILE} away (a [test] table it holds can go into the spec afterwards)")
            raise UserError(f"{dest}: error: would overwrite what is yours: {', '.join(sorted(set(clash)))}. "
                            f"Fix: {'; '.join(fixes) or 'move those files away'}.")
        created: list[Path] = []
        try:
            for rel in ours:
                target = dest / rel
                if not target.parent.exists():
                    target.parent.mkdir(parents=True)
                    created.append(target.parent)
                shutil.copyfile(staged / rel, target)
                created.append(target)
            new_text = kbuild_edit.with_block(text, found, _objects(spec, user_files))
            into = {"kbuild": kbuild.name, "module": found.module, "user": sorted(user_files), "block": _digest(kbuild_edit.block_of(new_text))}
            _write_manifest(dest, spec.module.name, generated, into)
            created.append(dest / MANIFEST)
            atomic_write(kbuild, new_text.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            for path in reversed(created):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise UserError(f"{dest}: error: cannot add the files: {exc.strerror or exc}. Fix: check the directory is writable.") from None
    return RenderResult(dest, generated, user_files)

