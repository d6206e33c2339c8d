"""Teach kconfiglib 14.1 the Kconfig syntax Linux added after it froze.

kconfiglib (PyPI, 14.1.0) stopped following the kernel in 2020.  Three
constructs since then make it fail or misread a tree:

- ``modules`` (Linux >= 5.13) replaced ``option modules`` on MODULES;
  kconfiglib says "couldn't parse 'modules': unrecognized construct".
  We write it back as ``option modules``, which kconfiglib knows.
- ``transitional`` (Linux 6.18) marks an old symbol that only passes its
  .config value on to the symbol that replaced it (``default OLD``) and is
  never written out.  kconfiglib ignores the .config value of a symbol
  without a prompt, so we give it a prompt (the only way a .config value
  sticks), remember its name in `CompatKconfig.transitional`, and leave it out
  of written configs.  Explanations treat it as undefined.
- ``depends on X if Y`` (the release after 6.19) means ``X || !Y``; we write
  exactly that.

The rewrite is line for line, so every file:line kconfiglib reports still
points at the real file.  Help texts are copied untouched: a help line that
happens to read "modules" is prose, not syntax.

`CompatKconfig` is kconfiglib's Kconfig with that rewrite applied to every
Kconfig file it reads (kconfiglib opens all of them through `_open`), with
warnings collected instead of printed, and with ``$(shell,...)`` run in a
scratch directory.  Use `dbgscaffold.kconfig.tree.load_tree` rather than
constructing it yourself: that sets the environment kconfiglib needs.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from glob import glob

import kconfiglib

# The version this layer is written for: it overrides kconfiglib's private _open and
# _config_contents and calls _warning_if_fn/_error_if_fn, which another version may
# change without notice. pyproject.toml pins it; tests/test_packaging.py checks both.
KCONFIGLIB_VERSION = (14, 1, 0)

# Bump when the rewrite or the pickled layout changes: it is part of the
# parsed-tree cache key.
COMPAT_VERSION = 1

TRANSITIONAL_PROMPT = "(transitional: value passed on from an old .config)"

_CONFIG_RE = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)")
_BLOCK_RE = re.compile(r"^\s*(choice|endchoice|menu|endmenu|if|endif|comment|source|rsource|osource|orsource|mainmenu)\b")
_MODULES_RE = re.compile(r"^(\s*)modules(\s*(?:#.*)?)$")
_TRANSITIONAL_RE = re.compile(r"^(\s*)transitional(?:\s+(bool|tristate|string|int|hex))?(\s*(?:#.*)?)$")
_DEPENDS_RE = re.compile(r"^(\s*depends\s+on\s+)(.*)$", re.S)
# Any line the rewrite could change matches these (a '#' quoted before the
# 'if' aside); files without a match, nearly all of them, skip the
# line-by-line pass.  Plain substring tests first: they are ~10x faster.
_TRIGGER_ATTR_RE = re.compile(r"\n[ \t]*(?:modules|transitional)\b")
_TRIGGER_DEPENDS_RE = re.compile(r"depends[ \t]+on(?:\\\n|[^\n#])*?[ \t)]if[ \t(!\"'$]")


def _may_need_rewrite(text: str) -> bool:
    if ("modules" in text or "transitional" in text) and _TRIGGER_ATTR_RE.search("\n" + text):
        return True
    return _TRIGGER_DEPENDS_RE.search(text) is not None


@dataclass(frozen=True)
class Change:
    line: int  # 1-based, in the rewritten file
    kind: str  # "modules", "transitional" or "depends-if"
    before: str
    after: str


@dataclass(frozen=True)
class Rewrite:
    text: str
    changes: tuple[Change, ...]
    transitional: tuple[str, ...]  # names of symbols marked 'transitional'


def _indent(line: str) -> int:
    expanded = line.expandtabs()
    return len(expanded) - len(expanded.lstrip())


def _is_help(line: str) -> bool:
    return line.strip(" \t\n-") == "help"


def split_depends_if(expr: str) -> tuple[str, str, str] | None:
    """(X, Y, comment) for the text after 'depends on' when it reads 'X if Y'.

    Finds the last 'if' word outside quotes and parentheses, before any '#'
    comment.  None when there is no such 'if'.
    """
    depth = 0
    quote = ""
    last_if = -1
    end = len(expr)
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "#":
            end = i
            break
        elif (
            depth == 0
            and expr.startswith("if", i)
            and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_$"))
            and (i + 2 == len(expr) or not (expr[i + 2].isalnum() or expr[i + 2] == "_"))
        ):
            last_if = i
        i += 1
    if last_if < 0:
        return None
    left, right = expr[:last_if].strip(), expr[last_if + 2 : end].strip()
    if not left or not right:
        return None
    return left, right, expr[end:].rstrip("\n")


def rewrite_kconfig(text: str) -> Rewrite:
    """Rewrite one Kconfig file's text for kconfiglib, keeping every line number."""
    if not _may_need_rewrite(text):
        return Rewrite(text, (), ())
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    changes: list[Change] = []
    transitional: list[str] = []
    current: str | None = None  # the symbol whose properties we are in
    in_help = False
    help_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if in_help:
            if line.isspace():
                out.append(line)
                i += 1
                continue
            indent = _indent(line)
            if help_indent is None and indent > 0:
                help_indent = indent
            if help_indent is not None and indent >= help_indent:
                out.append(line)
                i += 1
                continue
            in_help = False  # this line ends the help text: parse it as syntax
        # Join backslash continuations the way kconfiglib does; the joined
        # line is emitted first and the consumed lines become blank lines.
        logical = line
        extra = 0
        while logical.endswith("\\\n") and i + extra + 1 < len(lines):
            extra += 1
            logical = logical[:-2] + lines[i + extra]
        newline = "\n" if logical.endswith("\n") else ""
        body = logical[: len(logical) - len(newline)]
        new = body

        match = _CONFIG_RE.match(body)
        if match:
            current = match.group(1)
        elif _BLOCK_RE.match(body):
            current = None
        if _is_help(body):
            in_help, help_indent = True, None
        elif m := _MODULES_RE.match(body):
            new = f"{m.group(1)}option modules{m.group(2)}"
            changes.append(Change(i + 1, "modules", body, new))
        elif m := _TRANSITIONAL_RE.match(body):
            keyword = m.group(2) or "prompt"
            new = f'{m.group(1)}{keyword} "{TRANSITIONAL_PROMPT}"{m.group(3)}'
            changes.append(Change(i + 1, "transitional", body, new))
            if current:
                transitional.append(current)
        elif m := _DEPENDS_RE.match(body):
            parts = split_depends_if(m.group(2))
            if parts:
                left, right, comment = parts
                new = f"{m.group(1)}({left}) || !({right}){' ' + comment if comment else ''}"
                changes.append(Change(i + 1, "depends-if", body, new))

        if new is body:
            out.extend(lines[i : i + extra + 1])
        else:
            out.append(new + newline)
            out.extend("\n" for _ in range(extra))
        i += extra + 1
    return Rewrite("".join(out), tuple(changes), tuple(transitional))


_ASSIGNMENT_RE = re.compile(r"^\s*[A-Za-z0-9_-]+\s*(\+?=)")


def syntax_lines(text: str) -> Iterator[str]:
    """The lines kconfiglib parses as syntax: all but help texts."""
    in_help = False
    help_indent: int | None = None
    for line in text.splitlines():
        if in_help:
            if not line.strip():
                continue
            indent = _indent(line)
            if help_indent is None and indent > 0:
                help_indent = indent
            if help_indent is not None and indent >= help_indent:
                continue
            in_help = False
        if _is_help(line):
            in_help, help_indent = True, None
        else:
            yield line


def _is_macro_line(line: str) -> bool:
    # Recursive ('=', '+=') definitions are expanded only where used.
    return "$(" in line and not line.lstrip().startswith("#") and not _ASSIGNMENT_RE.match(line)


def macro_lines(text: str) -> list[str]:
    """Lines kconfiglib will macro-expand at parse time: those with '$(' outside
    help texts, comments and recursive variable definitions."""
    return [line for line in syntax_lines(text) if _is_macro_line(line)]


_SOURCE_RE = re.compile(r'^[ \t]*(source|rsource|osource|orsource)[ \t]+"([^"]*)"', re.M)


_PENDING = "\x01dbgscaffold-pending\x01"


def run_shell(command: str, cwd: str) -> tuple[bytes, bytes]:
    proc = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, check=False)
    return proc.stdout, proc.stderr


class CompatKconfig(kconfiglib.Kconfig):
    """kconfiglib.Kconfig reading Kconfig files through `rewrite_kconfig`.

    Extra attributes: `transitional` (set of symbol names), `rewrites`
    (list of (file, Change)), `messages` (what ``$(info,...)`` printed),
    `config_path` (the .config last loaded with `load_config`).
    Warnings are never printed; they collect in `warnings` as usual.

    ``$(shell,...)`` commands (cc-option probes: ~90 gcc runs, most of a
    cold parse) run in a thread pool ahead of the parser: once
    scripts/Kconfig.include is in, a dry expansion of the macro lines of
    every file the parse will source queues them in parse order, and the
    parser takes each result when it reaches the line.  A command the dry
    run could not foresee (one built from another's output) simply runs
    when reached.  Help texts are never expanded, as in kconfiglib.
    """

    def __init__(self, filename: str = "Kconfig", shell_cwd: str | None = None, prefetch: bool = True):
        self.transitional: set[str] = set()
        self.rewrites: list[tuple[str, Change]] = []
        self.messages: list[str] = []
        self.config_path: str | None = None
        self._shell_cwd = shell_cwd
        self._dry_run = False
        self._looked_ahead = False
        self._prefetched: dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="kconfig-shell") if prefetch and shell_cwd else None
        try:
            super().__init__(filename, warn=True, warn_to_stderr=False, encoding="utf-8", suppress_traceback=False)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._prefetched = {}
        # Parsing is over: drop the closed file handle so the object pickles.
        self._readline = None
        self._filestack: list = []

    def _open(self, filename, mode):
        if mode == "r" and getattr(self, "_parsing_kconfigs", False):
            with open(filename, encoding=self._encoding) as f:
                result = rewrite_kconfig(f.read())
            if result.changes:
                rel = filename[len(self._srctree_prefix) :] if filename.startswith(self._srctree_prefix) else filename
                self.rewrites.extend((rel, change) for change in result.changes)
                self.transitional.update(result.transitional)
            if self._pool is not None:
                if not self._looked_ahead and "scripts/Kconfig.include" in self.kconfig_filenames and not filename.endswith("scripts/Kconfig.include"):
                    # Kconfig.include is in: the probes' macros (cc-option...) exist.
                    self._looked_ahead = True
                    self._look_ahead(filename)
                elif "$(" in result.text:
                    self._prefetch(macro_lines(result.text))
            return io.StringIO(result.text)
        return super()._open(filename, mode)

    def _look_ahead(self, current: str) -> None:
        """Queue the probes of every Kconfig file the parse will read, in order.

        Follows 'source' statements from the top Kconfig without parsing
        (globs expanded as kconfiglib does); files already read are only
        walked through.  Queued in parse order, the
        probes of lib/Kconfig.debug are done long before the parse gets there.
        """
        top = os.path.normpath(os.path.join(self.srctree, self.kconfig_filenames[0]))
        current = os.path.normpath(current)
        seen: set[str] = set()
        lines: list[str] = []
        started = False

        def visit(path: str) -> None:
            nonlocal started
            real = os.path.normpath(path)
            if real in seen:
                return
            seen.add(real)
            started = started or real == current
            try:
                with open(path, encoding=self._encoding) as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                return
            # Few files have macros: only those get the help-aware line pass.
            if started and "$(" in text:
                lines.extend(macro_lines(text))
            # A 'source' quoted in a help text would only add probes.
            for m in _SOURCE_RE.finditer(text) if "source" in text else ():
                pattern = self._dry_expand(m.group(2)) if "$(" in m.group(2) else m.group(2)
                if pattern is None:
                    continue
                base = os.path.dirname(path) if m.group(1) in ("rsource", "orsource") else self.srctree
                pattern = os.path.join(base, pattern)
                if any(c in pattern for c in "*?["):
                    for found in sorted(glob(pattern)):
                        visit(found)
                else:
                    visit(pattern)

        visit(top)
        self._prefetch(lines)

    def _dry_expand(self, text: str) -> str | None:
        self._dry_run = True
        try:
            out = self._expand_whole(text, ())
        except Exception:
            return None
        finally:
            self._dry_run = False
        return None if _PENDING in out else out

    def _prefetch(self, lines: list[str]) -> None:
        """Dry-expand macro lines; `_shell_fn` queues the commands they would run."""
        if not lines:
            return
        # The dry run must leave no trace: expansion counters, env_vars.
        counters = {name: var._n_expansions for name, var in self.variables.items()}
        env_vars = set(self.env_vars)  # type: ignore[has-type]  # kconfiglib's attribute, set in its __init__
        self._dry_run = True
        try:
            for line in lines:
                try:
                    self._expand_whole(line, ())
                except Exception:  # the real parse reports it, with file:line
                    pass
        finally:
            self._dry_run = False
            for name, var in self.variables.items():
                var._n_expansions = counters.get(name, 0)
            self.env_vars = env_vars

    def __getstate__(self):
        # (instance dict, slots): leave out the pickled copy of ourselves that
        # tree.load_tree keeps for fresh_copy().
        state, slots = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_pristine"}, slots

    def load_config(self, filename=None, replace=True, verbose=None):
        message = super().load_config(filename, replace, verbose)
        self.config_path = filename
        return message

    def _config_contents(self, header):
        # Transitional symbols are read from old configs but never written.
        contents = super()._config_contents(header)
        if not self.transitional:
            return contents
        drop = {f"{self.config_prefix}{name}" for name in self.transitional}
        kept = []
        for line in contents.splitlines(keepends=True):
            name = line[2:].split(" ", 1)[0] if line.startswith("# ") else line.split("=", 1)[0]
            if name not in drop:
                kept.append(line)
        return "".join(kept)


def _shell_fn(kconf, _name, command):
    """$(shell,...) like kconfiglib's, but run in a scratch directory.

    The C tool runs these from the object tree; a scratch directory keeps
    stray output files (cc-option's .tmp_$$) out of the user's directory.
    """
    cwd = getattr(kconf, "_shell_cwd", None)
    pool = getattr(kconf, "_pool", None)
    if getattr(kconf, "_dry_run", False):
        if pool is not None and _PENDING not in command and command not in kconf._prefetched:
            kconf._prefetched[command] = pool.submit(run_shell, command, cwd)
        return _PENDING
    future = kconf._prefetched.get(command) if pool is not None else None
    if future is not None:
        out, err = future.result()
    elif cwd is None:
        with tempfile.TemporaryDirectory(prefix="dbgscaffold-kconfig-") as where:
            out, err = run_shell(command, where)
    else:
        out, err = run_shell(command, cwd)
    stdout = out.decode(kconf._encoding, errors="replace")
    stderr = err.decode(kconf._encoding, errors="replace")
    if stderr:
        kconf._warn("'{}' wrote to stderr: {}".format(command, "\n".join(stderr.splitlines())), kconf.filename, kconf.linenr)
    return "\n".join(stdout.splitlines()).rstrip("\n").replace("\n", " ")


def _info_fn(kconf, _name, msg):
    # kconfiglib print()s these; we keep them with the warnings instead.
    messages = getattr(kconf, "messages", None)
    if messages is not None and not getattr(kconf, "_dry_run", False):
        messages.append(f"{kconf.filename}:{kconf.linenr}: {msg}")
    return ""


# Module-level (not closures): kconf._functions is pickled with the tree.
def _warning_if_fn(kconf, name, cond, msg):
    return "" if getattr(kconf, "_dry_run", False) else kconfiglib._warning_if_fn(kconf, name, cond, msg)


def _error_if_fn(kconf, name, cond, msg):
    return "" if getattr(kconf, "_dry_run", False) else kconfiglib._error_if_fn(kconf, name, cond, msg)


# kconfiglib imports the module named by $KCONFIG_FUNCTIONS and adds its
# `functions` to the preprocessor's; load_tree points it here.
functions = {
    "shell": (_shell_fn, 1, 1),
    "info": (_info_fn, 1, 1),
    "warning-if": (_warning_if_fn, 2, 2),
    "error-if": (_error_if_fn, 2, 2),
}
