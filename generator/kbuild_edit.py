"""Find a module's object list in someone's Kbuild or Makefile and keep our block of it.

`new --into` adds the generated debugfs objects to an existing module: kbuild
builds a module from several objects only when it is composite (`foo-y :=
a.o b.o`, or `foo-objs`), so the module must be one already; ours are then one
marked block appended to the file, `<module>-y += ...` (or `-objs`), that
`regen` rewrites and nothing else of the file is touched. Anything we cannot
read with certainty (variables in obj-m, several modules and no --module) is a
UserError saying what to do. Pure: text in, text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UserError

BEGIN = "# >>> dbgscaffold: the debugfs files of dbgscaffold.toml (dbgscaffold regen rewrites this block)"
END = "# <<< dbgscaffold"
_ASSIGN = re.compile(r"^\s*(?:override\s+)?([A-Za-z0-9_.$()-]+)\s*(:=|\+=|\?=|=)\s*(.*)$")
_OBJ_M = re.compile(r"^obj-(?:m|y|\$\(CONFIG_[A-Za-z0-9_]+\))$")


@dataclass(frozen=True)
class ModuleObjects:
    """A composite module of a Kbuild: `foo` built from `variable` (`foo-y` or `foo-objs`)."""

    module: str
    variable: str
    objects: tuple[str, ...]  # as listed, our block's excluded


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each make line: continuations joined, comments dropped."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(?<!\\)#.*$", "", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _span(text: str) -> tuple[int, int] | None:
    """Where our block is (from BEGIN to the end of the END line); a UserError when it lost its END."""
    start = text.find(BEGIN)
    if start < 0:
        return None
    end = text.find(END, start)
    if end < 0:
        raise UserError(f"the dbgscaffold block (from '{BEGIN}') has lost its last line '{END}', so where it ends is unknown. "
                        f"Fix: put '{END}' back after the block's lines (version control has them).")
    return start, text.find("\n", end) + 1 or len(text)


def block_of(text: str) -> str:
    """Our block as it stands in the file ('' when there is none)."""
    span = _span(text)
    return text[span[0] : span[1]] if span else ""


def without_block(text: str) -> str:
    """The file as its owner wrote it: our block (and the blank line before it) removed."""
    span = _span(text)
    if span is None:
        return text
    start, end = span
    return text[:start].rstrip("\n") + ("\n" if text[:start].strip() else "") + text[end:]


def has_block(text: str) -> bool:
    return BEGIN in text


def find_module(text: str, file: str, wanted: str | None = None) -> ModuleObjects:
    """The composite module our objects join; a UserError with a Fix when it is not certain."""
    text = without_block(text)
    modules: dict[str, int] = {}
    composite: dict[str, tuple[str, list[str]]] = {}
    for number, line in _logical_lines(text):
        m = _ASSIGN.match(line)
        if not m:
            continue
        var, value = m.group(1), m.group(3).split()
        if _OBJ_M.match(var):
            for token in value:
                if "$" in token:
                    raise UserError(f"{file}:{number}: error: obj-m is built from make variables ('{token}'), which dbgscaffold does not evaluate. "
                                    "Fix: name the module's object directly (obj-m := NAME.o), or add the generated objects by hand.")
                if token.endswith(".o"):
                    modules.setdefault(token[:-2], number)
            continue
        for suffix in ("-y", "-objs"):
            if var.endswith(suffix) and var[: -len(suffix)]:
                name = var[: -len(suffix)]
                previous_var, previous = composite.get(name, (var, []))
                if previous_var != var:
                    raise UserError(f"{file}:{number}: error: module '{name}' lists its objects in both {previous_var} and {var}. "
                                    f"Fix: use one of them, or add the generated objects by hand.")
                composite[name] = (var, previous + value if m.group(2) == "+=" else value)
    if not modules:
        raise UserError(f"{file}: error: no obj-m line names a module. Fix: add 'obj-m := NAME.o' (and NAME-y := the objects).")
    if wanted is not None:
        if wanted not in modules:
            raise UserError(f"{file}: error: no module '{wanted}' in obj-m (it names: {', '.join(modules)}). Fix: pass --module with one of them.")
        name = wanted
    elif len(modules) == 1:
        name = next(iter(modules))
    else:
        raise UserError(f"{file}: error: it builds several modules ({', '.join(modules)}). Fix: pass --module NAME for the one the debugfs files join.")
    if name not in composite:
        raise UserError(
            f"{file}:{modules[name]}: error: module '{name}' is built from {name}.c alone, and kbuild cannot add objects to a "
            f"single-file module without renaming its source. Fix: rename {name}.c (e.g. to {name}_main.c), write "
            f"'{name}-y := {name}_main.o' below obj-m, and run dbgscaffold new --into again.")
    var, objects = composite[name]
    return ModuleObjects(name, var, tuple(objects))


def with_block(text: str, module: ModuleObjects, objects: list[str]) -> str:
    """`text` with our block listing `objects` (replacing the old one, or appended)."""
    block = "\n".join([
        BEGIN,
        f"{module.variable} += {' '.join(objects)}",
        "ccflags-y += -I$(src)",
        "ccflags-y += $(if $(shell grep -qs 'struct debugfs_u32_array' $(srctree)/include/linux/debugfs.h && echo y),"
        "-DDBGSCAFFOLD_HAVE_DEBUGFS_U32_ARRAY)",
        END,
    ]) + "\n"
    base = without_block(text)
    return base + ("\n" if base and not base.endswith("\n") else "") + ("\n" if base.strip() else "") + block
