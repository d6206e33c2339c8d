"""check-config as one stage: config + profiles (+ Kconfig tree) -> CheckReport.

The CLI parses options into a CheckRequest and prints the CheckReport; the
work happens here and in the pure modules it calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .dotconfig import DotConfig, find_running_config, makefile_version, read_dotconfig
from .flat import FAIL, OptionResult, check_flat, run_status
from .profiles import Profile, load_profile

JSON_SCHEMA = "dbgscaffold/check-config/v1"
DEFAULT_PROFILES = ("systemtap",)


@dataclass(frozen=True)
class CheckRequest:
    config: Path | None = None  # None: the running kernel's, or srctree's .config
    profiles: tuple[str, ...] = DEFAULT_PROFILES
    srctree: Path | None = None
    build_dir: Path | None = None  # an O= directory holding the .config
    arch: str | None = None
    tree: str = "auto"  # auto | always | never
    runtime: bool | None = None  # None: only when checking the running kernel
    strict: bool = False


@dataclass
class CheckReport:
    config: DotConfig
    config_path: Path
    profiles: list[Profile]
    results: list[OptionResult]
    analysis: str = "flat"  # flat | kconfig
    tree_source: str = ""  # where the Kconfig tree came from
    tree_note: str = ""  # why there is no tree analysis, when there is none
    runtime: list = field(default_factory=list)
    running_kernel: bool = False
    strict: bool = False

    @property
    def exit_code(self) -> int:
        return run_status(self.results, self.strict)

    @property
    def version(self) -> tuple[int, ...]:
        return self.config.version

    def to_dict(self) -> dict:
        failed = [r for r in self.results if r.status == FAIL]
        return {
            "schema": JSON_SCHEMA,
            "config": {
                "path": str(self.config_path),
                "kernel_version": self.config.version_text or None,
                "arch": self.config.arch or None,
                "running_kernel": self.running_kernel,
                "warnings": list(self.config.warnings),
            },
            "analysis": {"depth": self.analysis, "kconfig_tree": self.tree_source or None, "note": self.tree_note or None},
            "profiles": [{"name": p.name, "title": p.title} for p in self.profiles],
            "options": [_result_dict(r) for r in self.results],
            "runtime": [c.to_dict() for c in self.runtime],
            "summary": {
                "exit_code": self.exit_code,
                "strict": self.strict,
                "required_failed": sorted({r.symbol for r in failed if r.option.level == "required"}),
                "recommended_failed": sorted({r.symbol for r in failed if r.option.level == "recommended"}),
            },
        }


def _result_dict(r: OptionResult) -> dict:
    explanation = r.explanation.to_dict() if hasattr(r.explanation, "to_dict") else None
    return {
        "profile": r.profile,
        "symbol": r.symbol,
        "level": r.option.level,
        "accepted": sorted(r.option.accepted),
        "actual": r.actual,
        "status": r.status,
        "why_needed": r.option.why,
        "reason": r.reason or None,
        "note": r.option.note or None,
        "explanation": explanation,
        "fix": [{"symbol": s, "value": v} for s, v in r.fix],
    }


def resolve_config(request: CheckRequest) -> tuple[Path, bool]:
    """The config to check and whether it is the running kernel's."""
    if request.config is not None:
        return request.config, False
    if request.build_dir is not None:
        return request.build_dir / ".config", False
    if request.srctree is not None:
        path = request.srctree / ".config"
        if not path.is_file():
            raise UserError(
                f"{request.srctree}: error: no .config in the tree. Fix: pass the config as an argument, "
                "or --build-dir for an O= build directory."
            )
        return path, False
    return find_running_config(), True


def run_check(request: CheckRequest) -> CheckReport:
    profiles = [load_profile(name) for name in dict.fromkeys(request.profiles)]
    path, running = resolve_config(request)
    config = read_dotconfig(path)
    if not config.version and request.srctree is not None:
        config = DotConfig(config.source, config.values, makefile_version(request.srctree), config.arch, config.warnings)
    if request.arch:
        config = DotConfig(config.source, config.values, config.version, request.arch, config.warnings)
    report = CheckReport(config, path, profiles, check_flat(config, profiles), running_kernel=running, strict=request.strict)
    if request.runtime or (request.runtime is None and running):
        from .runtime import check_runtime

        report.runtime = check_runtime({p.name for p in profiles})
    return report
