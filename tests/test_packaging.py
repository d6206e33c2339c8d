"""The wheel ships every tracked data file, and an installed wheel runs from
its own site-packages.

The wheel is built from a copy of the tracked files (no stale build/, no
untracked work in progress) and installed offline (`--no-deps --no-index`) into
a fresh venv that borrows its dependencies from this interpreter's
site-packages through a .pth line (a path line: the editable-install hooks of
that site-packages do not run in the fresh venv).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from conftest import REPO, require

pytestmark = pytest.mark.slow

DATA_DIRS = ("module_templates", "kernel_configs")
SOURCE_ROOT = "generator"  # installed as the dbgscaffold package
LABS = ("debugfs-basics", "debugfs-fops", "relay", "kprobes", "ftrace", "systemtap")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    require(out.returncode == 0 and bool(out.stdout), "a git checkout of dbgscaffold (git ls-files)")
    return [rel for rel in out.stdout.decode().split("\0") if rel and (REPO / rel).is_file()]


def _in_wheel(rel: str) -> str:
    """Where a tracked file lands in the wheel."""
    if rel.startswith(SOURCE_ROOT + "/"):
        return "dbgscaffold/" + rel[len(SOURCE_ROOT) + 1 :]
    return "dbgscaffold/" + rel


def _setuptools_ok() -> bool:
    try:
        major = int(re.match(r"\d+", metadata.version("setuptools")).group())
    except (metadata.PackageNotFoundError, AttributeError):
        return False
    return major >= 68  # pyproject's [build-system] requires


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel path, tracked files) for a wheel built from a copy of the tracked tree."""
    require(subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0, "pip in the test interpreter")
    tracked = _tracked()
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    for rel in tracked:
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes((REPO / rel).read_bytes())
    out = tmp / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)]
    if _setuptools_ok():
        cmd[4:4] = ["--no-build-isolation"]  # offline and faster: this interpreter's setuptools
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and "setuptools" in proc.stderr and "No matching distribution" in proc.stderr:
        require(False, "setuptools>=68 in the test interpreter or from the configured package index")
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(out.glob("dbgscaffold-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], tracked


def test_wheel_holds_every_tracked_data_file_and_module(built):
    wheel, tracked = built
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [rel for rel in tracked if rel.split("/", 1)[0] in DATA_DIRS]
    assert any(rel.startswith("module_templates/labs/") for rel in wanted), "no lab data tracked?"
    missing = [rel for rel in wanted if _in_wheel(rel) not in names]
    assert not missing, f"tracked data files missing from {wheel.name}: {missing}"
    code = [rel for rel in tracked if rel.startswith(SOURCE_ROOT + "/")]
    missing_code = [rel for rel in code if _in_wheel(rel) not in names]
    assert not missing_code, f"tracked package files missing from {wheel.name} (a subpackage not in [tool.setuptools] packages?): {missing_code}"
    # Nothing else rides along: the package holds exactly the tracked files.
    shipped = {_in_wheel(rel) for rel in wanted + code}
    extra = sorted(n for n in names if not n.startswith("dbgscaffold-") and n not in shipped)
    assert not extra, f"files in {wheel.name} that git does not track: {extra}"


def test_installed_wheel_lists_the_labs_outside_the_checkout(built, tmp_path):
    wheel, _ = built
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    # Dependencies (click, rich, cookiecutter, kconfiglib) from this interpreter, after the venv's own site-packages.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_dbgscaffold_test_deps.pth").write_text("".join(p + "\n" for p in sorted(deps)))
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    exe = str(venv / "bin" / "dbgscaffold")
    where = subprocess.run([str(python), "-c", "import dbgscaffold; print(dbgscaffold.__file__)"], cwd=work, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(purelib) and str(REPO) not in where.stdout, where.stdout

    listing = subprocess.run([exe, "lab", "list"], cwd=work, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr
    for lab in LABS:
        assert lab in listing.stdout, (lab, listing.stdout)
    assert "BROKEN" not in listing.stdout, listing.stdout

    # The data a lab run needs, resolved inside the installed package.
    probe = (
        "from dbgscaffold.paths import templates_root\n"
        "from dbgscaffold.kconfig.profiles import profiles_dir\n"
        "from dbgscaffold.runner.checks import guest_library\n"
        "from dbgscaffold.lab.systemtap import patches_dir\n"
        "print(templates_root()); print(profiles_dir()); print(patches_dir())\n"
        "assert 'run_check' in guest_library()\n"
        "assert (patches_dir() / 'features.toml').is_file()\n"
    )
    paths = subprocess.run([str(python), "-c", probe], cwd=work, capture_output=True, text=True)
    assert paths.returncode == 0, paths.stderr
    for line in paths.stdout.splitlines():
        assert line.startswith(purelib + "/dbgscaffold/"), paths.stdout

    skeleton = work / "ft"
    start = subprocess.run([exe, "lab", "start", "ftrace", str(skeleton)], cwd=work, capture_output=True, text=True)
    assert start.returncode == 0, start.stderr
    assert "# TODO 1:" in (skeleton / "trace.sh").read_text()
    assert (skeleton / "tests" / "lib.sh").is_file() and (skeleton / "tests" / "10-function.sh").is_file()


def test_kconfiglib_is_the_version_the_compat_layer_is_written_for():
    """kconfig/compat.py overrides kconfiglib's private methods: another version may have
    changed them without notice, so pyproject pins the one it is written for."""
    import kconfiglib

    from dbgscaffold.kconfig.compat import KCONFIGLIB_VERSION

    wanted = ".".join(map(str, KCONFIGLIB_VERSION))
    assert kconfiglib.VERSION == KCONFIGLIB_VERSION, (
        f"kconfiglib {'.'.join(map(str, kconfiglib.VERSION))} is installed; kconfig/compat.py is written for {wanted} "
        "(it overrides Kconfig._open and _config_contents): check those against the new version, then move the pin")
    requires = metadata.requires("dbgscaffold") or []
    assert f"kconfiglib=={wanted}" in requires, requires
    for name in ("_open", "_config_contents"):
        assert callable(getattr(kconfiglib.Kconfig, name, None)), f"kconfiglib.Kconfig.{name} is gone"


def test_every_imported_distribution_is_declared():
    """What the package imports from outside the standard library is in its dependencies
    (jinja2 came with cookiecutter, undeclared, until issue 15)."""
    import ast

    imported = set()
    for path in (REPO / SOURCE_ROOT).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in ("dbgscaffold", "__future__")}
    declared = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in metadata.requires("dbgscaffold") or [] if "extra ==" not in r}
    assert third_party and {m.lower() for m in third_party} <= declared, (third_party, declared)
