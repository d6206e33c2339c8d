"""One KTAP document for a whole `test --ktap` command: each module on each kernel is a
subtest of it, laid out as KUnit's suites are (what the kernel's kunit_parser reads).

    KTAP version 1
    1..2
      KTAP version 1
      # Subtest: mydebug on 6.1.0-57-amd64
      1..21
      ok 1 insmod mydebug
      ...
    ok 1 mydebug on 6.1.0-57-amd64
    # build failed: mydebug.c:29:1: error: ...
    not ok 2 other on 6.1.0-57-amd64

A run's own document (the guest's KTAP) is indented by two spaces, its name line goes
after its version line. The parent result is `ok` only for a passing run; what else
happened is one diagnostic before it. One run streams its lines as they arrive; several
are written whole, in order, as each ends (their lines would interleave).

Pure: KtapDocument's methods return text; the caller writes it.
"""

from __future__ import annotations

from .model import TestRun

VERSION = "KTAP version 1"


def run_name(module: str, release: str) -> str:
    return f"{module} on {release}" if release else f"{module} (no kernel)"


class KtapDocument:
    """The document's text, piece by piece: header(), then for each run in order either
    start() + line()... + end(), or whole()."""

    def __init__(self, runs: int):
        self.runs = runs
        self.number = 0
        self._name = ""
        self._named = False

    def header(self) -> str:
        return f"{VERSION}\n1..{self.runs}\n"

    def start(self, module: str, release: str) -> str:
        self.number += 1
        self._name = run_name(module, release)
        self._named = False
        return ""

    def line(self, text: str) -> str:
        """One line of the run's own KTAP, nested (its first version line gets the name after it)."""
        text = text.rstrip("\n")
        if text == VERSION and not self._named:
            self._named = True
            return f"  {VERSION}\n  # Subtest: {self._name}\n"
        return f"  {text}\n" if text else "\n"

    def end(self, run: TestRun) -> str:
        """The run's result line (and why it is not ok)."""
        why = "" if run.exit_code == 0 else f"# {run.verdict} (exit {run.exit_code})\n"
        return f"{why}{'ok' if run.exit_code == 0 else 'not ok'} {self.number} {self._name}\n"

    def whole(self, run: TestRun) -> str:
        """A finished run: its nested document (none for a failed build) and its result."""
        text = self.start(run.module, run.release)
        if run.build_failure is None:
            text += "".join(self.line(x) for x in run.results.splitlines())
        return text + self.end(run)
