"""Which kernel a run uses: a `--kernel` value (a release, a series like 6.1) or the default, as image + headers pairs."""

from __future__ import annotations

from ..errors import UserError
from ..vm import images
from ..vm.images import KernelPair


def resolve(kernel: str | None, all_kernels: bool = False) -> tuple[list[KernelPair], str]:
    """The pairs to use, and a line saying why (for stderr)."""
    if kernel and all_kernels:
        raise UserError("error: give --kernel or --all-kernels, not both.")
    if all_kernels:
        scan = images.scan_pairs()
        if not scan.pairs:
            images.default_pair()  # raises with the details and the fix
        return list(scan.pairs), f"all kernels: {', '.join(p.release for p in scan.pairs)}"
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
