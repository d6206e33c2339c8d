"""The `[test]` table of dbgscaffold.toml: how `dbgscaffold test` loads and checks a project's modules.

A hand-written module's dbgscaffold.toml may hold only this table (no [module],
no [[entry]]: nothing is generated); a generated project may add it too.

    [test]
    params = "debug_value=3"          # insmod parameters (a table {module = "..."} for several modules)
    modules = ["provider", "consumer"] # which modules to load, in this order (default: all, dependencies first)
    timeout = 90                       # seconds for the whole run in the VM
    discover = true                    # derive checks from what the modules create (default: on without [[entry]])

Pure: parse_test_table(), key_line().
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .problems import Problem

TEST_KEYS = ("params", "modules", "timeout", "discover")
MAX_TIMEOUT = 3600.0
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,55}$")


@dataclass(frozen=True)
class TestTable:
    __test__ = False  # not a pytest class
    params: tuple[tuple[str, str], ...] = ()  # (module, insmod parameters); module "" = the only module
    modules: tuple[str, ...] = ()  # load order; () = every module the build makes
    timeout: float | None = None
    discover: bool | None = None  # None: the default for the kind of project
    present: bool = field(default=False, compare=False)  # the file had a [test] table

    def params_for(self, module: str, count: int) -> str | None:
        """The insmod parameters of `module` when the build makes `count` modules;
        None when a single params string cannot say which module it is for."""
        table = dict(self.params)
        if "" in table:
            return table[""] if count == 1 else None
        return table.get(module.replace("-", "_"), table.get(module, ""))


def key_line(text: str, table: str, key: str | None = None) -> int:
    """The 1-based line of `[table]` (or of `key` inside it), 0 when not found."""
    header = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            if header and key is not None:
                break
            if re.match(rf"^\[\s*{re.escape(table)}\s*\]", stripped):
                header = number
                if key is None:
                    return number
            continue
        if header and key is not None and re.match(rf"^\s*{re.escape(key)}\s*[=.]", line):
            return number
    return header


def _params(raw: object, where: str, line: int, file: str, out: list[Problem]) -> tuple[tuple[str, str], ...]:
    fix = 'write params = "name=value ..." or, for several modules, params = { mymod = "name=value" }.'
    if isinstance(raw, str):
        values = [("", raw)]
    elif isinstance(raw, dict):
        values = list(raw.items())
    else:
        out.append(Problem(file, line, where, f"'params' must be a string or a table, not {type(raw).__name__}", fix))
        return ()
    for module, value in values:
        if module and not _MODULE_NAME.match(module):
            out.append(Problem(file, line, where, f"params: {module!r} is not a module name", fix))
        elif not isinstance(value, str):
            out.append(Problem(file, line, where, f"params for {module or 'the module'} must be a string, not {type(value).__name__}", fix))
        elif any(ord(c) < 0x20 or ord(c) == 0x7F or c in "'\"\\`$;&|<>" for c in value):
            out.append(Problem(file, line, where, f"params {value!r} has quotes, shell or control characters",
                               "write name=value pairs separated by spaces (values without quotes or spaces)."))
    return tuple((m, v) for m, v in values if isinstance(v, str))


def parse_test_table(raw: object, text: str, file: str) -> tuple[TestTable, list[Problem]]:
    """The [test] table (None when absent) and every problem with it."""
    out: list[Problem] = []
    where = "[test]"
    if raw is None:
        return TestTable(), out
    if not isinstance(raw, dict):
        out.append(Problem(file, key_line(text, "test"), where, f"'test' must be a table, not {type(raw).__name__}", "write a [test] table."))
        return TestTable(), out
    for key in raw:
        if key not in TEST_KEYS:
            out.append(Problem(file, key_line(text, "test", key), where, f"unknown key '{key}'", f"valid keys: {', '.join(TEST_KEYS)}."))
    params: tuple[tuple[str, str], ...] = ()
    if "params" in raw:
        params = _params(raw["params"], where, key_line(text, "test", "params"), file, out)
    modules: tuple[str, ...] = ()
    if "modules" in raw:
        value = raw["modules"]
        line = key_line(text, "test", "modules")
        if not isinstance(value, list) or not value or not all(isinstance(m, str) and _MODULE_NAME.match(m) for m in value):
            out.append(Problem(file, line, where, "'modules' must be a non-empty list of module names", 'write modules = ["first", "second"].'))
        elif len(set(value)) != len(value):
            out.append(Problem(file, line, where, "'modules' names a module twice", "list each module once, in load order."))
        else:
            modules = tuple(value)
    timeout = None
    if "timeout" in raw:
        value = raw["timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
            out.append(Problem(file, key_line(text, "test", "timeout"), where, f"'timeout' must be a number of seconds from 1 to {MAX_TIMEOUT:g}",
                               "write timeout = 90."))
        else:
            timeout = float(value)
    discover = None
    if "discover" in raw:
        if not isinstance(raw["discover"], bool):
            out.append(Problem(file, key_line(text, "test", "discover"), where, "'discover' must be true or false", "write discover = true."))
        else:
            discover = raw["discover"]
    if params and modules and not any(m == "" for m, _ in params):
        for module, _ in params:
            if module not in modules:
                out.append(Problem(file, key_line(text, "test", "params"), where, f"params names {module!r}, which 'modules' does not list",
                                   f"use one of: {', '.join(modules)}."))
    return TestTable(params, modules, timeout, discover, present=True), out
