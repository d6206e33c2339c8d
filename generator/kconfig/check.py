"""check-config as one stage: config + profiles (+ Kconfig tree) -> CheckReport.

The CLI parses options into a CheckRequest and prints the CheckReport; the
work happens here and in the pure modules it calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import schemas
from ..errors import UserError
from .dotconfig import DotConfig, find_running_config, makefile_version, read_dotconfig
from .flat import FAIL, OptionResult, check_flat, run_status
from .profiles import Profile, load_profile

if TYPE_CHECKING:  # fix.py imports the Kconfig machinery: only its types are needed here
    from .fix import ApplyResult, WriteResult

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
    fix_fragment: Path | None = None  # write the verified fix as a config fragment
    scripts_config: bool = False  # print the fix as scripts/config commands
    apply: Path | None = None  # write the fixed .config here
    in_place: bool = False  # apply to the checked config itself (a .bak is kept)

    @property
    def wants_fix(self) -> bool:
        return bool(self.fix_fragment or self.scripts_config or self.apply or self.in_place)


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
    order: dict = field(default_factory=dict)  # symbol -> menuconfig position, with a tree
    fix: ApplyResult | None = None  # when a fix was asked for
    written: WriteResult | None = None  # after --apply / --in-place

    @property
    def exit_code(self) -> int:
        if self.written is not None:
            # After --apply the verdict is on the config we wrote.
            return 0 if all(o.ok for o in self.written.outcomes) else 1
        return run_status(self.results, self.strict)

    @property
    def version(self) -> tuple[int, ...]:
        return self.config.version

    def to_dict(self) -> dict:
        failed = [r for r in self.results if r.status == FAIL]
        return {
            "schema": schemas.CHECK_CONFIG,
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
            "fix": self.fix.to_dict() if self.fix is not None else None,
            "applied": self.written.to_dict() if self.written is not None else None,
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
    if request.in_place and running:
        raise UserError("error: --in-place needs a config file argument; the running kernel's config is not edited.")
    if request.tree != "never" or request.wants_fix:
        _tree_analysis(report, request)
    elif request.wants_fix:
        raise UserError("error: fixes are verified on the Kconfig tree; drop --flat.")
    if request.runtime or (request.runtime is None and running):
        from .runtime import check_runtime

        report.runtime = check_runtime({p.name for p in profiles})
    return report


# ---------------------------------------------------------------------------
# With the real Kconfig tree


def _tree_analysis(report: CheckReport, request: CheckRequest) -> None:
    """Re-judge every option on the evaluated tree, explain failures, plan fixes.

    Without a tree (none installed, or syntax kconfiglib cannot read) the
    report stays flat and says why -- unless a fix was asked for, which
    cannot be verified without one.
    """
    from . import tree as kt

    cfg = report.config
    arch = cfg.arch or request.arch or "x86"
    try:
        if not cfg.version and request.srctree is None:
            raise UserError(
                f"{report.config_path}: error: no '# Linux/<arch> <version> Kernel Configuration' header, "
                "so which Kconfig tree applies is unknown. Fix: pass --srctree DIR"
            )
        source = kt.find_source_tree(cfg.version_text or None, srctree=request.srctree, arch=arch)
        kconf = kt.load_tree(source, arch, config=report.config_path)
    except kt.KconfigTreeError as exc:
        if request.wants_fix:
            raise
        report.tree_note = f"{exc}; fell back to the flat analysis"
        return
    except UserError as exc:
        if request.wants_fix or request.srctree is not None:
            raise
        report.tree_note = str(exc).removeprefix("error: ")
        return
    # The parsed tree is ~10^5 long-lived objects: keep the collector from
    # walking them again on every later allocation burst (rich's rendering).
    import gc

    gc.freeze()
    report.analysis = "kconfig"
    report.tree_source = str(source.path)
    report.order = kt.menu_order(kconf)
    loaded = getattr(kconf, "config_load", None)
    extra = tuple(f"kconfig: {w}" for w in (loaded.warnings if loaded else ()))
    report.results = [_judge(kconf, r, cfg) for r in report.results]
    if extra:
        report.config = DotConfig(cfg.source, cfg.values, cfg.version, cfg.arch, cfg.warnings + extra)
    if request.wants_fix:
        _fix(kconf, report, request)


def _judge(kconf, result: OptionResult, cfg: DotConfig) -> OptionResult:
    from dataclasses import replace

    from .explain import UNDEFINED, explain
    from .flat import NOT_IN_KERNEL, OK

    option = result.option
    sym = kconf.syms.get(option.symbol)
    if sym is None or not sym.nodes:
        ex = explain(kconf, option.symbol, option.accepted)
        if option.accepted == {"n"}:
            return replace(result, status=OK, reason="", explanation=None)
        status = FAIL if option.level == "required" else NOT_IN_KERNEL
        return replace(result, status=status, reason=ex.message, explanation=ex)
    value = sym.str_value or "n"
    in_file = result.actual if result.actual is not None else "n"
    dropped = in_file != value and in_file in ("y", "m", "n")
    # From here `actual` is what the kernel gets: kconfig's evaluation of the file.
    result = replace(result, actual=value)
    if value in option.accepted:
        reason = f"the file says {in_file} but kconfig evaluates it to {value}" if dropped else ""
        return replace(result, status=OK, reason=reason, explanation=None)
    ex = explain(kconf, option.symbol, option.accepted)
    reason = ex.message
    if dropped:
        reason = f"the file says {in_file}, but kconfig (olddefconfig) makes it {value}: {reason}"
    if ex.kind == UNDEFINED:
        status = FAIL if option.level == "required" else NOT_IN_KERNEL
        return replace(result, status=status, reason=reason, explanation=ex)
    fix = ex.fix if ex.fix_works else ()
    return replace(result, status=FAIL, reason=reason, explanation=ex, fix=fix)


def _fix(kconf, report: CheckReport, request: CheckRequest) -> None:
    from .fix import apply_fix, plan_fix, write_fixed_config

    wanted: dict[str, frozenset[str]] = {}
    for r in report.results:
        if r.status == FAIL and (request.strict or r.option.level == "required"):
            wanted.setdefault(r.symbol, r.option.accepted)
    plan = plan_fix(kconf, list(wanted.items()))
    report.fix = apply_fix(kconf, plan)
    if request.fix_fragment is not None:
        header = (
            f"# dbgscaffold check-config fix for {report.config_path} "
            f"(profiles: {', '.join(p.name for p in report.profiles)})\n"
            "# Only lines verified to take effect on the Kconfig tree.\n"
        )
        try:
            request.fix_fragment.write_text(header + report.fix.fragment, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{request.fix_fragment}: error: cannot write: {exc.strerror}.") from None
    if request.apply is not None or request.in_place:
        target = report.config_path if request.in_place or request.apply is None else request.apply
        if not request.in_place and target.resolve() == report.config_path.resolve():
            raise UserError(f"{target}: error: --apply would overwrite the checked config. Fix: use --in-place (keeps a .bak) or another path.")
        try:
            report.written = write_fixed_config(report.fix, target, in_place=request.in_place)
        except OSError as exc:
            raise UserError(f"{target}: error: cannot write: {exc.strerror}.") from None
