"""Shell completion of the values the CLI takes by name: lab ids, config profiles and
kernels (the installed releases, their series, kernels built by `kernel build`).

Each runs at every <TAB>: it reads directory listings only, never parses a lab or boots.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem


def labs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from .lab.manifest import labs_root

    return [CompletionItem(p.name) for p in sorted(labs_root().iterdir())
            if (p / "lab.toml").is_file() and p.name.startswith(incomplete)]


def profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from .kconfig.profiles import available_profiles

    return [CompletionItem(name) for name in available_profiles() if name.startswith(incomplete)]


def kernels(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Series and releases of the installed image + headers pairs, built kernels' names;
    a path (it starts with / or .) completes as a directory."""
    if incomplete.startswith(("/", ".", "~")):
        return [CompletionItem(incomplete, type="dir")]
    from .kernel_build import built_kernels
    from .vm import images

    names: list[str] = []
    for pair in images.scan_pairs().pairs:
        series = ".".join(pair.release.split(".")[:2])
        names += [series, pair.release]
    names += [b.name for b in built_kernels()]
    return [CompletionItem(n) for n in dict.fromkeys(names) if n.startswith(incomplete)]
