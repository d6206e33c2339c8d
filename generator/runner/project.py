"""A module project as `dbgscaffold test` sees it, and how its payload is made.

Any kbuild directory is a project: a `Kbuild`, or a `Makefile` naming obj-m.
Its `dbgscaffold.toml` is optional: with [module] and [[entry]] tables (made by
`dbgscaffold new`) the checks follow the spec; with only a [test] table (or no
file) the checks are discovered at run time. Either may add the project's
executable tests/*.sh.

Edges: load_project() (reads the directory), ProjectChecks.prepare() (kbuild, packing).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..kbuild import module_makefile
from ..problems import Problem, SpecError, syntax_problem
from ..spec import SPEC_FILE, TOP_KEYS, Spec, parse_spec, read_spec_text
from ..test_table import TestTable, parse_test_table
from ..untrusted_build import Untrusted
from ..vm.agent import PAYLOAD_ROOT, PAYLOAD_SCRIPT, pack_payload
from ..vm.images import KernelPair
from ..vm.initramfs import FileSpec
from . import checks
from .build import BuildFailed, Built, build_modules, usage_failure
from .detectors import config_of, has_kmemleak
from .execute import Prepared, RunOptions, RunRequest, run
from .model import TestRun


@dataclass(frozen=True)
class ModuleProject:
    path: Path  # resolved
    spec: Spec | None  # a generated project's spec; None for a hand-written module
    test: TestTable  # the [test] table (defaults when absent)

    @property
    def name(self) -> str:
        return self.spec.module.name if self.spec is not None else self.path.name

    @property
    def discover(self) -> bool:
        """Discovered checks: asked for, or by default when no spec declares the files."""
        return self.test.discover if self.test.discover is not None else self.spec is None

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return self.spec.warnings if self.spec is not None else ()

    def params(self, built: Built, release: str) -> list[str]:
        """Each built module's insmod parameters, in load order; BuildFailed (exit 2) when
        one [test] params string would have to serve several modules."""
        out = []
        for m in built.modules:
            params = self.test.params_for(m.name, len(built.modules))
            if params is None:
                raise BuildFailed(usage_failure(release, self.path, (
                    f"{self.path / SPEC_FILE}: error: [test] params is one string, but the build makes "
                    f"{len(built.modules)} modules ({', '.join(x.name for x in built.modules)}). "
                    f'Fix: params = {{ {built.modules[0].name} = "..." }}, one entry per module that takes parameters.')))
            out.append(params)
        return out


def load_project(directory: Path) -> ModuleProject:
    """The project in `directory`; a UserError (exit 2) saying what to pass instead
    when it is none, or every problem of its dbgscaffold.toml."""
    path = Path(directory).resolve()
    if not path.is_dir():
        raise UserError(f"{directory}: error: no such directory. Fix: pass the module's directory.")
    toml = path / SPEC_FILE
    if not toml.is_file():
        module_makefile(path)  # no spec: it must at least be a kbuild directory
        return ModuleProject(path, None, TestTable())
    text = read_spec_text(toml)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([syntax_problem(str(toml), exc)]) from None
    if "module" in data or "entry" in data:
        spec = parse_spec(text, str(toml))
        module_makefile(path)
        return ModuleProject(path, spec, spec.test)
    problems = [Problem(str(toml), 0, "", f"unknown top-level key '{key}'",
                        f"the file has a [test] table (and, when generated, [module] and [[entry]]): {', '.join(TOP_KEYS)}.")
                for key in data if key not in TOP_KEYS]
    test, more = parse_test_table(data.get("test"), text, str(toml))
    if problems or more:
        raise SpecError(problems + more)
    module_makefile(path)
    return ModuleProject(path, None, test)


@dataclass(frozen=True)
class ProjectChecks:
    """The checks of `dbgscaffold test`: the spec's, the discovered ones, tests/*.sh."""

    project: ModuleProject
    stress_seconds: float = 0.0
    untrusted: Untrusted | None = None  # --untrusted: build a copy in the sandbox

    def prepare(self, project: Path, pair: KernelPair, workdir: Path, check_timeout: float | None) -> Prepared:
        t0 = time.monotonic()
        built = build_modules(project, pair.build_dir, pair.release, workdir, self.project.test.modules, self.untrusted)
        build_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        modules = tuple(checks.GuestModule(m.name, f"{PAYLOAD_ROOT}/{m.ko.name}", params)
                        for m, params in zip(built.modules, self.project.params(built, pair.release)))
        users = checks.user_checks(project)
        user_guest = tuple(f"{PAYLOAD_ROOT}/user/{p.name}" for p in users)
        run = checks.RunPlan(modules, self.project.spec, self.project.discover, user_guest, self.stress_seconds,
                             leak_check=has_kmemleak(config_of(pair)))
        plan = checks.plan(run, pair.version)
        payload = pack_payload([
            *(FileSpec.from_path(g.ko, m.ko, 0o644) for g, m in zip(modules, built.modules)),
            FileSpec(PAYLOAD_SCRIPT, checks.script(run, pair.version, check_timeout).encode(), 0o755),
            *(FileSpec.from_path(g, p, 0o755) for g, p in zip(user_guest, users)),
        ])
        c_names = self.project.spec.c_names() if self.project.spec is not None else ()
        return Prepared(self.project.name, tuple(c.name for c in plan), payload, build_seconds, time.monotonic() - t0, built, c_names)


def request(project: ModuleProject, stress_seconds: float = 0.0, untrusted: Untrusted | None = None) -> RunRequest:
    """The RunRequest of `dbgscaffold test` for one project."""
    return RunRequest(project.name, project.path, ProjectChecks(project, stress_seconds, untrusted), project.test.timeout)


def run_tests(projects: Sequence[ModuleProject | Path], pair: KernelPair, options: RunOptions | None = None,
              stress_seconds: float = 0.0, on_line: Callable[[int, str], None] | None = None,
              untrusted: Untrusted | None = None) -> list[TestRun]:
    """`dbgscaffold test` of every project on `pair`: one TestRun each, in order."""
    loaded = [p if isinstance(p, ModuleProject) else load_project(p) for p in projects]
    return [r for r, _ in run([request(p, stress_seconds, untrusted) for p in loaded], pair, options or RunOptions(), on_line)]
