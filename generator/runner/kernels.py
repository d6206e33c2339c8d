"""Which kernel a run uses: a `--kernel` value as image + headers pairs, checked before anything boots.

A `--kernel` value is a release or a series of an installed Debian kernel
(`6.1`, `6.12.118+deb12-amd64`), or a PATH: a kernel build tree (in-tree or an
`O=` output directory: its arch/x86/boot/bzImage or vmlinux, .config,
Module.symvers and the built kbuild scripts), or with `--headers DIR` an image
file and the headers of the same release. A tree's .config is held to the test
VM's needs (kernel_configs/vm.config) before it boots: a missing option is exit
4 with check-config's verified fix, never a hang at boot.

Edges: resolve(), kernel_tree(), vm_config_problems() (read files, run the Kconfig analysis).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import EnvironmentProblem, UserError
from ..paths import cache_dir
from ..vm import images
from ..vm.images import KernelPair

VM_PROFILE = "vm"  # kernel_configs/vm.config: what the test VM needs from a kernel


def looks_like_path(kernel: str) -> bool:
    """A --kernel value naming a file or directory rather than a release."""
    return "/" in kernel or kernel.startswith(".") or Path(kernel).exists()


def resolve(kernel: str | None, all_kernels: bool = False, headers: Path | None = None) -> tuple[list[KernelPair], str]:
    """The pairs to use, and a line saying why (for stderr)."""
    if kernel and all_kernels:
        raise UserError("error: give --kernel or --all-kernels, not both.")
    if headers is not None:
        if not kernel or not looks_like_path(kernel):
            raise UserError("error: --headers goes with --kernel IMAGE (a kernel image file). Fix: --kernel PATH/bzImage --headers DIR.")
        pair = images.check_pair(Path(kernel), headers)
        return [pair], f"using {pair.release}: --kernel {kernel} --headers {headers}"
    if all_kernels:
        scan = images.scan_pairs()
        if not scan.pairs:
            images.default_pair()  # raises with the details and the fix
        return list(scan.pairs), f"all kernels: {', '.join(p.release for p in scan.pairs)}"
    if kernel and not looks_like_path(kernel):
        from ..kernel_build import find_built

        built = find_built(kernel)
        if built is not None:  # a kernel `dbgscaffold kernel build` made: its short name
            pair = kernel_tree(built.tree)
            return [pair], f"using {pair.release}: the {built.name} kernel built by dbgscaffold ({built.tree})"
    if kernel and looks_like_path(kernel):
        pair = kernel_tree(Path(kernel))
        remember_tree(pair)
        return [pair], f"using {pair.release}: the kernel built in {pair.build_dir}"
    if kernel:
        pair = images.pair_for(kernel)
        return [pair], f"using {pair.release}: --kernel {kernel}"
    pair, reason = images.default_pair()
    return [pair], reason


def series(pair: KernelPair) -> str:
    """'6.1' of 6.1.0-57-amd64."""
    return ".".join(map(str, pair.version[:2]))


def by_series() -> dict[str, KernelPair]:
    """The newest installed pair of each series."""
    found = {}
    for pair in images.scan_pairs().pairs:  # oldest first: the newest of a series wins
        found[series(pair)] = pair
    return found


# ---------------------------------------------------------------- a kernel build tree

REMEMBERED = "kernel-trees.json"  # in the cache: the trees --kernel PATH was given, for `dbgscaffold kernels`


def _remembered_file() -> Path:
    return cache_dir() / REMEMBERED


def remember_tree(pair: KernelPair) -> None:
    """Add a tree that resolved to the list `dbgscaffold kernels` shows (best effort)."""
    path = _remembered_file()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict) or known.get(str(pair.build_dir)) == pair.release:
        return
    known[str(pair.build_dir)] = pair.release
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


def remembered_trees() -> list[tuple[Path, str]]:
    """(tree, its release) of every tree --kernel PATH was given that is still there."""
    try:
        known = json.loads(_remembered_file().read_text())
    except (OSError, ValueError):
        return []
    out = []
    for tree in sorted(known) if isinstance(known, dict) else ():
        now = images.headers_release(Path(tree))
        if now is not None:
            out.append((Path(tree), now))
    return out



def source_tree(build: Path) -> Path:
    """The source tree of a build: itself when built in-tree, else what an O= directory's `source` link names."""
    link = build / "source"
    return link.resolve() if link.is_dir() else build


def kernel_tree(path: Path) -> KernelPair:
    """A kernel build tree as an image + headers pair, or exit 4 with what is missing and
    how to make it. Its .config must give the test VM what it needs (vm_config_problems)."""
    build = Path(path).resolve()
    if build.is_file():
        raise UserError(f"{path}: error: a kernel image needs the headers it was built with. "
                        f"Fix: --kernel {path} --headers BUILD_DIR, or --kernel BUILD_DIR (the tree the image was built in).")
    if not build.is_dir():
        raise UserError(f"{path}: error: no such file or directory. Fix: pass the kernel's build directory (where you ran make, or its O= directory).")
    if not (build / "Makefile").is_file() or not (build / ".config").is_file():
        raise EnvironmentProblem(f"{build}: error: not a configured kernel build tree (no Makefile and .config). "
                                 "Fix: pass the directory you built the kernel in (its O= directory for an out-of-tree build).")
    release = images.headers_release(build)
    bzimage, vmlinux = build / "arch" / "x86" / "boot" / "bzImage", build / "vmlinux"
    image = bzimage if bzimage.is_file() else vmlinux if vmlinux.is_file() and images.pvh_entry_of(vmlinux) else None
    missing = []
    if release is None:
        missing.append("include/generated/utsrelease.h (the kernel was never built)")
    if image is None:
        missing.append("arch/x86/boot/bzImage (nor a vmlinux with a PVH entry)")
    if not (build / "Module.symvers").is_file():
        missing.append("Module.symvers (modpost writes it when the kernel and its modules are built)")
    if not (build / "scripts" / "mod" / "modpost").is_file():
        missing.append("scripts/mod/modpost (the kbuild tools out-of-tree modules need)")
    if missing:
        raise EnvironmentProblem(f"{build}: error: this kernel build tree lacks " + "; ".join(missing) + ". "
                                 f"Fix: make -C {source_tree(build)}{' O=' + str(build) if source_tree(build) != build else ''} "
                                 "-j$(nproc) bzImage modules (a complete build writes them all).")
    assert release is not None and image is not None  # else in `missing` above
    problems, fix = vm_config_problems(build)
    if problems:
        fix_text = "".join(f"\n  {line}" for line in fix.splitlines()) if fix else ""
        raise EnvironmentProblem(
            f"{build / '.config'}: error: the test VM cannot boot this kernel: " + "; ".join(problems) + "."
            + (f"\nFix (verified on its Kconfig tree): add these lines to the .config and rebuild:{fix_text}" if fix else
               f"\nFix: dbgscaffold check-config {build / '.config'} --srctree {source_tree(build)} -p {VM_PROFILE} --apply fixed.config")
            + f"\n(or merge kernel_configs/{VM_PROFILE}.config: scripts/kconfig/merge_config.sh)")
    return KernelPair(release, image, build)


def vm_config_problems(build: Path) -> tuple[list[str], str]:
    """What the tree's .config lacks of the VM profile (each 'CONFIG_X is n: why'), and
    check-config's verified fix fragment ('' when the Kconfig tree cannot be analysed)."""
    from ..kconfig.dotconfig import read_dotconfig
    from ..kconfig.flat import actual_text, check_flat
    from ..kconfig.profiles import load_profile

    config = build / ".config"
    failed = [r for r in check_flat(read_dotconfig(config), [load_profile(VM_PROFILE)]) if r.failed_required]
    if not failed:
        return [], ""
    problems = [f"CONFIG_{r.symbol} is {actual_text(r.actual)} ({r.option.why})" for r in failed]
    try:
        from ..kconfig.check import CheckRequest, run_check

        report = run_check(CheckRequest(config=config, profiles=(VM_PROFILE,), srctree=source_tree(build), tree="always",
                                        runtime=False, scripts_config=True))
    except UserError:
        return problems, ""
    return problems, report.fix.fragment if report.fix is not None else ""
