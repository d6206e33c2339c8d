"""The package's layers only point down, with no cycle and no import of another module's private names.

CLI (cli, lab.cli) -> labs (lab/) -> runner (runner/) -> VM core (vm/), kbuild, render,
kconfig/ -> spec and kinds -> ground floor (errors, paths, elf, kernels, ...).
Read from the source with ast, every import counted (also those inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "generator"

# A module's layer by its dotted name (the first matching prefix wins); higher imports lower only.
LAYERS = (
    ("cli", 5), ("cli_completion", 5), ("lab.cli", 5), ("__main__", 5),
    ("lab", 4),
    ("runner", 3),
    ("vm", 2), ("kbuild", 2), ("kbuild_edit", 2), ("untrusted_build", 2), ("kernel_build", 2), ("render", 2), ("jinja_ext", 2), ("kconfig", 2), ("lint", 2), ("checkpatch", 2), ("doctor", 2),
    ("spec", 1), ("test_table", 1), ("spec_model", 1), ("kinds", 1), ("c_literals", 1), ("problems", 1),
    ("errors", 0), ("paths", 0), ("procs", 0), ("sandbox", 0), ("bounded", 0), ("elf", 0), ("kernels", 0), ("inputs", 0), ("schemas", 0), ("__init__", 0),
)


def layer(module: str) -> int:
    for prefix, level in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return level
    raise AssertionError(f"{module}: no layer: add it to LAYERS in {__file__}")


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" and len(rel.parts) > 1 else rel.parts
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for each package-internal import."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.append((target, [a.name for a in node.names], node.lineno))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            for alias in ([ast.alias(mod)] if mod else node.names):
                if alias.name.startswith("dbgscaffold."):
                    found.append((alias.name.removeprefix("dbgscaffold."), [a.name for a in getattr(node, "names", [])], node.lineno))
    return found


def resolve(target: str, names: list[str], known: dict[str, Path]) -> list[str]:
    """The modules an import reaches: `from .vm import images` reaches vm.images."""
    out = []
    for n in names:
        if f"{target}.{n}" in known:
            out.append(f"{target}.{n}")
    return out or ([target] if target in known or not target else [target])


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        for target, names, _ in imports(name, path):
            edges[name].update(t for t in resolve(target, names, known) if t and t != name)
    return edges


def test_every_import_points_down_or_stays_in_its_layer():
    wrong = []
    for name, targets in graph().items():
        for t in targets:
            if layer(t) > layer(name):
                wrong.append(f"{name} (layer {layer(name)}) imports {t} (layer {layer(t)})")
    assert not wrong, "\n".join(wrong)


def test_the_vm_core_knows_nothing_of_runner_labs_or_cli():
    for name, targets in graph().items():
        if name.startswith("vm"):
            assert not {t for t in targets if t.split(".")[0] in ("runner", "lab", "cli", "render", "spec")}, name


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for t in sorted(edges.get(n, ())):
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)


def test_no_module_imports_another_modules_private_names():
    wrong = []
    for name, path in modules().items():
        for target, names, line in imports(name, path):
            wrong += [f"{path.name}:{line}: {n} from {target}" for n in names if n.startswith("_") and not n.startswith("__")]
    assert not wrong, "\n".join(wrong)


def test_the_checks_catch_what_they_are_for():
    """The helpers see an upward import and a private name (a test that cannot fail is a defect)."""
    assert layer("vm.session") < layer("runner.execute") < layer("lab.engine") < layer("cli")
    fake = {"vm.x": {"runner.y"}}
    assert [f"{n} -> {t}" for n, ts in fake.items() for t in ts if layer(t) > layer(n)] == ["vm.x -> runner.y"]
    tree = ast.parse("from .qemu import _kill_group, argv\n")
    node = tree.body[0]
    assert [a.name for a in node.names if a.name.startswith("_")] == ["_kill_group"]


def test_the_test_commands_path_does_not_load_the_template_engine():
    """`test` reads a spec on every run but renders nothing: jinja2 (~30 ms of its startup)
    is imported only by what renders (render, jinja_ext)."""
    import subprocess
    import sys

    code = ("import sys, dbgscaffold.cli, dbgscaffold.runner.execute, dbgscaffold.runner.project, "
            "dbgscaffold.runner.report, dbgscaffold.spec; print(sorted(m for m in sys.modules if m.split('.')[0] == 'jinja2'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    rendered = subprocess.run([sys.executable, "-c", "import sys, dbgscaffold.jinja_ext; print('jinja2' in sys.modules)"],
                              capture_output=True, text=True, check=True).stdout
    assert rendered.strip() == "True"  # the probe sees jinja2 where it is loaded
