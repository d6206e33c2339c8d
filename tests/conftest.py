"""Shared fixtures.

Tests that need a real tool (make, sparse, kernel headers, checkpatch, qemu)
ask for it through `require()`: outside CI a missing tool skips the test with
the reason; under CI=true it fails it, because CI installs everything.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from dbgscaffold.cli import cli

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
KERNEL_SERIES = ("6.1", "6.12")  # Debian bookworm and bookworm-backports


def require(condition: bool, what: str) -> None:
    """Skip (or under CI=true fail) unless `condition` holds."""
    if condition:
        return
    message = f"missing: {what}"
    if IN_CI:
        pytest.fail(message + " (CI=true: CI installs every tool, so this is a failure)")
    pytest.skip(message)


def require_tools(*names: str) -> None:
    for name in names:
        require(shutil.which(name) is not None, f"'{name}' on PATH")


def _newest(paths, release_of) -> list[Path]:
    from dbgscaffold.kernels import release_version

    return sorted(paths, key=lambda p: (release_version(release_of(p)), p.name))


def debian_config(series: str) -> Path:
    """/boot/config-<release> of the newest installed kernel of `series` ('6.1', '6.12'):
    discovered, never hard-coded (Debian's kernel packages move: -56 became -57).
    A path that does not exist when none is installed (require() says so)."""
    from dbgscaffold.kernels import release_version

    want = tuple(int(x) for x in series.split("."))
    found = _newest([p for p in Path("/boot").glob("config-*") if release_version(p.name[7:])[:2] == want], lambda p: p.name[7:])
    return found[-1] if found else Path(f"/boot/config-{series}.x")


def kbuild_conf(series: str) -> Path:
    """Debian's linux-kbuild-<series...> scripts/kconfig/conf (the kernel's own kconfig tool), newest."""
    from dbgscaffold.kernels import release_version

    want = tuple(int(x) for x in series.split("."))
    found = _newest([p for p in Path("/usr/lib").glob("linux-kbuild-*/scripts/kconfig/conf")
                     if release_version(p.parts[3][len("linux-kbuild-"):])[:2] == want], lambda p: p.parts[3][len("linux-kbuild-"):])
    return found[-1] if found else Path(f"/usr/lib/linux-kbuild-{series}/scripts/kconfig/conf")


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """Run the CLI in-process; an uncaught exception is kept, not raised."""
    runner = CliRunner()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = runner.invoke(cli, list(args), catch_exceptions=True)
    finally:
        os.chdir(old)
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return CliResult(result.exit_code, result.stdout, result.stderr, exc)


def run_json(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    """`dbgscaffold test ARGS --json`: (exit code, the JSON report or {}, the output)."""
    import json

    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    r = run_cli("test", *args, "--json", str(report))
    assert r.exception is None, repr(r.exception)
    return r.exit_code, json.loads(report.read_text()) if report.exists() else {}, r.output


@pytest.fixture
def cli_run():
    return run_cli


@pytest.fixture(scope="session")
def kernel_headers():
    """{'6.1': KernelHeaders, '6.12': KernelHeaders}; each must be installed."""
    from dbgscaffold.kernels import headers_for

    found = {s: headers_for(s) for s in KERNEL_SERIES}
    for series, headers in found.items():
        require(headers is not None, f"kernel headers {series}.x in /lib/modules/*/build")
    return found


def _checkpatch(series: str | None):
    from dbgscaffold.checkpatch import find_checkpatch
    from dbgscaffold.errors import UserError

    require_tools("perl", "tar")
    try:
        return find_checkpatch(series=series)
    except UserError as exc:
        require(False, f"checkpatch.pl ({exc})")


@pytest.fixture(scope="session")
def checkpatch_script():
    """The checkpatch lint uses by default (the newest linux-source's)."""
    return _checkpatch(None)


@pytest.fixture(scope="session", params=KERNEL_SERIES)
def checkpatch_of_series(request):
    """checkpatch.pl from linux-source-6.1 and from linux-source-6.12."""
    return _checkpatch(request.param)


def python_exe() -> str:
    return sys.executable


def toml_str(text: str) -> str:
    """A TOML basic string holding exactly `text` (controls and DEL escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def qemu_processes(needle: str) -> list[int]:
    """Live qemu-system processes whose command line mentions `needle` (a
    run's own content-addressed initramfs: other runs may share the machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2 :].split()[0]
        if "qemu-system" in cmdline and needle in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def tiny_kernel():
    """A kernel built once per run (and cached across runs) by dbgscaffold itself from Debian's
    linux-source-6.1: tinyconfig + kernel_configs/vm.config (about 2.5 minutes on 2 cores)."""
    from dbgscaffold.errors import UserError
    from dbgscaffold.kernel_build import HEADERS, TOOLS, build_kernel, source_for

    require(Path("/usr/src/linux-source-6.1.tar.xz").is_file(), "Debian's linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz)")
    require_tools("qemu-system-x86_64", *(tool for tool, _ in TOOLS))
    for header, package in HEADERS:
        require(Path(header).is_file(), f"{header} ({package})")
    try:
        return build_kernel(source_for("6.1"))
    except UserError as exc:
        pytest.fail(f"the test kernel did not build: {exc}")


def _debug_kernel(series: str, added: str) -> str:
    """`dbgscaffold kernel build --source SERIES` (the debug profile), its short name; a
    fresh build shows the line check-config's fix `added` (what tinyconfig lacks for KASAN)."""
    require(Path(f"/usr/src/linux-source-{series}.tar.xz").is_file(), f"Debian's linux-source-{series}")
    r = run_cli("kernel", "build", "--source", series)
    if r.exit_code != 0:
        pytest.fail(f"dbgscaffold kernel build failed (exit {r.exit_code}):\n{r.output}")
    assert f"debug-{series}: " in r.stdout and f"check-config added: {added}" in r.stdout or "already built" in r.stdout, r.output
    return f"debug-{series}"


@pytest.fixture(scope="session")
def debug_kernel(tiny_kernel):
    """The `debug` kernel of 6.1 (KASAN, lockdep, kmemleak, UBSAN), built once per run through
    `dbgscaffold kernel build` itself (~3-5 minutes on 2 cores); its short name."""
    return _debug_kernel("6.1", "CONFIG_SLUB=y")  # tinyconfig's SLOB has no KASAN


@pytest.fixture(scope="session")
def debug_kernel_6_12(debug_kernel):
    """The same from linux-source-6.12 (~3 minutes more, plus extracting the source once)."""
    return _debug_kernel("6.12", "# CONFIG_SLUB_TINY is not set")  # nor has 6.12's SLUB_TINY


@pytest.fixture(scope="session", params=["6.1", "6.12"])
def each_debug_kernel(request):
    """debug-6.1, then debug-6.12."""
    return request.getfixturevalue("debug_kernel" if request.param == "6.1" else "debug_kernel_6_12")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache of this test's own (DBGSCAFFOLD_CACHE)."""
    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
