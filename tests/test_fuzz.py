"""Property tests: whatever the spec, `dbgscaffold new` either writes a whole
project or reports the spec's problems and writes nothing.

Specs come from three sources: TOML built from a mix of valid and invalid
pieces, specs built from valid pieces only, and character-level mutations of
the shipped classic.toml and example.toml.  (Building the generated modules
is left to the kbuild tests.)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from conftest import run_cli, toml_str
from dbgscaffold.kinds import TYPES
from dbgscaffold.kinds.u32_array import MAX_ARRAY_LENGTH
from dbgscaffold.spec import GPL_LICENSES, RESERVED_NAMES, SpecError, parse_spec

SPECS = Path(__file__).resolve().parent.parent / "generator" / "specs"
SHIPPED = [(SPECS / n).read_text(encoding="utf-8") for n in ("classic.toml", "example.toml")]

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------
# Writing TOML




def toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else toml_str(k)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(v), repr(v))
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(toml_value, v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_text(top: dict, module: dict | None, entries: list[dict], style: str = "tables") -> str:
    """The spec as TOML; `style` writes [module] as a table, an inline table
    or dotted keys, and the entries as [[entry]] tables or an inline array."""
    pairs = lambda table: [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]  # noqa: E731
    lines = pairs(top)
    if module is not None and style == "inline module":
        lines.append(f"module = {toml_value(module)}")
    elif module is not None and style == "dotted module":
        lines += [f"module.{line}" for line in pairs(module)]
    if entries and style == "inline entries":
        lines.append(f"entry = {toml_value(entries)}")
    if module is not None and style in ("tables", "inline entries"):
        lines += ["[module]", *pairs(module)]
    for e in entries if style != "inline entries" else ():
        lines += ["", "[[entry]]", *pairs(e)]
    return "\n".join(lines) + "\n"


STYLE = st.sampled_from(["tables", "tables", "tables", "inline module", "dotted module", "inline entries"])


# ---------------------------------------------------------------------------
# Pieces, valid and not

TYPE_NAMES = list(TYPES)
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
GOOD_COMPONENT = st.from_regex(r"[a-z][a-z0-9_.-]{0,7}", fullmatch=True)
BAD_COMPONENT = st.sampled_from(["", ".", "..", "a b", "a*", "caf\u00e9", "x" * 65, "a\n", "root", "init", "x_data"])
PATH = st.lists(st.one_of(GOOD_COMPONENT, GOOD_COMPONENT, BAD_COMPONENT, TEXT), min_size=1, max_size=3).map("/".join)
TYPE = st.one_of(st.sampled_from(TYPE_NAMES), st.sampled_from(TYPE_NAMES), st.sampled_from(["u9", "strng", "U8", ""]), st.integers(), TEXT)
MODES = ["0644", "0444", "0600", "0400", "0200", "0664", "0640", "0666", "0755", "0000", "644", "0x1a4", "08888", "00644", "0o644"]
MODE = st.one_of(st.sampled_from(MODES), st.sampled_from(MODES), st.integers(-1, 0o7777), TEXT, st.booleans())
INT = st.one_of(st.integers(-300, 300), st.integers(-(2**65), 2**65), st.sampled_from([2**31, -(2**31) - 1, 2**32, 2**64]))
SCALAR = st.one_of(INT, st.booleans(), TEXT, st.floats())
VALUE = st.one_of(SCALAR, st.lists(st.one_of(INT, st.booleans(), TEXT), max_size=5), st.dictionaries(TEXT, SCALAR, max_size=2))
ENTRY_KEYS = ["path", "type", "mode", "value", "size", "length"]


@st.composite
def random_entry(draw) -> dict:
    """An entry whose keys and values are anything, often nearly right."""
    entry = {}
    if draw(st.integers(0, 9)):
        entry["path"] = draw(PATH)
    if draw(st.integers(0, 9)):
        entry["type"] = draw(TYPE)
    type_ = TYPES.get(entry.get("type")) if isinstance(entry.get("type"), str) else None
    if draw(st.booleans()):
        entry["mode"] = draw(MODE)
    if draw(st.booleans()):
        entry["value"] = draw(plausible_value(type_) if type_ and draw(st.booleans()) else VALUE)
    if draw(st.integers(0, 3)) == 0:
        entry["size"] = draw(st.one_of(st.integers(-2, 5000), SCALAR))
    if draw(st.integers(0, 3)) == 0:
        entry["length"] = draw(st.one_of(st.integers(-2, 1100), SCALAR))
    if draw(st.integers(0, 9)) == 0:
        entry[draw(st.one_of(TEXT, st.sampled_from(["valeu", "sise", "lenght", "mod"])))] = draw(VALUE)
    return entry


def plausible_value(type_):
    if type_.kind.name == "bool":
        return st.booleans()
    if type_.kind.name == "integer":
        return st.integers(type_.minimum - 1, type_.maximum + 1)
    if type_.kind.name == "u32_array":
        return st.lists(st.integers(-1, 2**32), max_size=6)
    return TEXT


MODULE_NAME = st.one_of(
    st.sampled_from(["m", "mydebug", "dbg_1", "int", "Bad-Name", "9lives", "dir", "textbuf", "x" * 56]),
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
    TEXT,
)
LICENSE = st.one_of(st.sampled_from(sorted(GPL_LICENSES)), st.sampled_from(["MIT", "BSD", "GPL-2.0", ""]), TEXT)


@st.composite
def random_module(draw) -> dict:
    module = {}
    if draw(st.integers(0, 9)):
        module["name"] = draw(MODULE_NAME)
    for key, value in (
        ("license", LICENSE),
        ("description", st.text(max_size=90)),
        ("author", st.text(max_size=90)),
        ("version", st.one_of(st.from_regex(r"[0-9][0-9.]{0,5}", fullmatch=True), TEXT)),
        ("root", st.one_of(GOOD_COMPONENT, BAD_COMPONENT)),
        ("licence", TEXT),
    ):
        if draw(st.integers(0, 3)) == 0:
            module[key] = draw(value)
    if draw(st.integers(0, 19)) == 0:
        module["name"] = draw(VALUE)
    return module


# ---------------------------------------------------------------------------
# Specs from valid pieces only: unique, collision-free paths by construction

VALID_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(lambda n: n not in RESERVED_NAMES)
WORD = st.from_regex(r"[a-z0-9_.-]{0,8}", fullmatch=True)
# Short enough for MODULE_DESCRIPTION("...") on one line, escapes included.
PRINTABLE = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=38),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=4),
)
VALID_MODES = {
    "yes": ["0644", "0444", "0600", "0400", "0200", "0640", "0664"],
    "no": ["0444", "0400", "0440"],
    "since 6.8": ["0444", "0400", "0644", "0600"],
}


@st.composite
def valid_entry(draw, index: int) -> dict:
    type_ = TYPES[draw(st.sampled_from(TYPE_NAMES))]
    parent = draw(st.sampled_from(["", "d0/", "d1/", "d1/d2/"]))
    entry = {"path": f"{parent}e{index}_{draw(WORD)}", "type": type_.name}
    if type_.kind.takes_mode and draw(st.booleans()):
        entry["mode"] = draw(st.sampled_from(VALID_MODES[type_.writes.value]))
    kind = type_.kind
    if kind.name == "integer" and draw(st.booleans()):
        entry["value"] = draw(st.integers(type_.minimum, type_.maximum))
    elif kind.name == "bool" and draw(st.booleans()):
        entry["value"] = draw(st.booleans())
    elif kind.name in ("blob", "custom", "string") and draw(st.booleans()):
        entry["value"] = draw(st.text(st.characters(codec="utf-8"), max_size=40))
        if kind.name == "string" and draw(st.booleans()):
            entry["size"] = len(entry["value"].encode()) + 1 + draw(st.integers(0, 100))
    elif kind.name == "u32_array":
        values = draw(st.lists(st.integers(0, 2**32 - 1), max_size=10))
        entry["value"] = values
        if not values or draw(st.booleans()):
            entry["length"] = max(1, len(values)) + draw(st.integers(0, MAX_ARRAY_LENGTH - 10))
    elif kind.name == "attribute":
        if draw(st.booleans()):
            entry["format"] = draw(st.sampled_from(["%llu\n", "0x%08llx\n", "%#llX", "n=%llu\n"]))
        if draw(st.booleans()):
            entry["value"] = draw(st.integers(0, 2**64 - 1))
    elif kind.name == "regset32":
        words = draw(st.lists(st.integers(0, 0x3FFF), min_size=1, max_size=6, unique=True))
        entry["registers"] = [{"name": f"R{n}", "offset": 4 * w, **({"value": draw(st.integers(0, 2**32 - 1))} if draw(st.booleans()) else {})}
                              for n, w in enumerate(words)]
    elif kind.name == "symlink":
        entry["target"] = None  # valid_parts() points it at another entry
    return entry


@st.composite
def valid_parts(draw) -> tuple[dict, list[dict]]:
    module = {"name": draw(VALID_NAME)}
    if draw(st.booleans()):
        module["license"] = draw(st.sampled_from(sorted(GPL_LICENSES)))
    if draw(st.booleans()):
        module["description"] = draw(PRINTABLE)
    if draw(st.booleans()):
        module["author"] = draw(PRINTABLE)
    if draw(st.booleans()):
        module["root"] = draw(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True))
    n = draw(st.integers(0, 8))
    entries = [draw(valid_entry(i)) for i in range(n)]
    for d in draw(st.sets(st.sampled_from(["d0", "d1", "d1/d2"]))):  # explicit directories
        entries.insert(draw(st.integers(0, len(entries))), {"path": d, "type": "dir"})
    targets = [e["path"] for e in entries if "target" not in e]
    targets += sorted({p.rsplit("/", 1)[0] for p in targets if "/" in p})
    for e in [e for e in entries if "target" in e]:
        if targets:
            e["target"] = draw(st.sampled_from(targets))
        else:
            entries.remove(e)
    return module, entries


def valid_specs():
    return st.builds(lambda parts, style: toml_text({}, *parts, style), valid_parts(), STYLE)


@st.composite
def random_specs(draw) -> str:
    """A valid spec with up to four corruptions from the invalid pieces."""
    module, entries = draw(valid_parts())
    top: dict = {}
    for _ in range(draw(st.integers(0, 4))):
        what = draw(st.sampled_from(["entry key", "entry key", "new entry", "duplicate", "module key", "no module", "top key"]))
        if what == "entry key" and entries:
            entry = draw(st.sampled_from(entries))
            key = draw(st.sampled_from(ENTRY_KEYS))
            if draw(st.integers(0, 4)) == 0:
                entry.pop(key, None)
            else:
                entry[key] = draw({"path": PATH, "type": TYPE, "mode": MODE}.get(key, VALUE))
        elif what == "new entry" or (what == "entry key" and not entries):
            entries.insert(draw(st.integers(0, len(entries))), draw(random_entry()))
        elif what == "duplicate" and entries:
            entries.append(dict(draw(st.sampled_from(entries))))
        elif what == "module key" and module is not None:
            module.update(draw(random_module()))
        elif what == "no module":
            module = None
        elif what == "top key":
            top[draw(st.one_of(TEXT, st.sampled_from(["modules", "entries"])))] = draw(SCALAR)
    text = toml_text(top, module, entries, draw(STYLE))
    if draw(st.integers(0, 9)) == 0:  # a stray line of TOML punctuation
        lines = text.split("\n")
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(st.sampled_from('[]{}="#.,= abc01'), max_size=8)))
        text = "\n".join(lines)
    return text


# ---------------------------------------------------------------------------
# Mutations of the shipped specs

CHUNK = st.text(st.one_of(st.sampled_from(list("\"'[]{}=#.,\n 0123456789abcxu_-/\\")), st.characters(codec="utf-8")), min_size=1, max_size=4)


@st.composite
def mutated_shipped_specs(draw) -> str:
    text = draw(st.sampled_from(SHIPPED))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            text = text[:at] + draw(CHUNK) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 30)) :]
        else:
            text = text[:at] + draw(CHUNK) + text[at + 1 :]
    return text


# ---------------------------------------------------------------------------
# The properties


def run_new(text: str):
    """Run `new --spec spec.toml -o out` in a fresh directory and check the
    all-or-nothing contract; return the exit code."""
    with tempfile.TemporaryDirectory(prefix="dbgscaffold-fuzz-") as tmp:
        tmp = Path(tmp)
        (tmp / "spec.toml").write_bytes(text.encode("utf-8"))
        result = run_cli("new", "--spec", "spec.toml", "-o", "out", cwd=tmp)
        assert result.exception is None, repr(result.exception)
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            assert sorted(os.listdir(tmp)) == ["spec.toml"], "something was written"
            assert "spec.toml" in result.stderr, result.output
            assert re.search(r"^spec\.toml(:\d+)*: error: ", result.stderr, re.M), result.stderr
        else:
            assert sorted(os.listdir(tmp)) == ["out", "spec.toml"], "staging left behind"
            assert "error" not in result.stderr, result.stderr
            check_project(tmp / "out", text)
        return result.exit_code


def check_project(out: Path, text: str) -> None:
    spec = parse_spec(text, "spec.toml")
    name = spec.module.name
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    expected = {
        "Kbuild",
        "Makefile",
        "README.md",
        "dbgscaffold.toml",
        ".dbgscaffold-manifest.json",
        f"{name}_debugfs.c",
        f"{name}_debugfs.h",
        f"{name}_compat.h",
        *(f"user/{e.cname}.c" for e in spec.files if e.kind.user_role),
    }
    assert expected <= files, expected - files
    assert (out / "dbgscaffold.toml").read_bytes() == text.encode("utf-8")
    assert json.loads((out / ".dbgscaffold-manifest.json").read_text())["module"] == name
    check = run_cli("spec", "check", str(out / "dbgscaffold.toml"))
    assert (check.exit_code, check.exception) == (0, None), check.output


@settings(FUZZ, max_examples=150)
@given(random_specs())
def test_new_on_random_specs_writes_everything_or_nothing(text):
    note(text)
    event(f"exit {run_new(text)}")


@settings(FUZZ, max_examples=120)
@given(mutated_shipped_specs())
def test_new_on_mutated_shipped_specs_writes_everything_or_nothing(text):
    note(text)
    event(f"exit {run_new(text)}")


@settings(FUZZ, max_examples=40)
@given(valid_specs())
def test_new_on_specs_from_valid_pieces_succeeds(text):
    note(text)
    assert run_new(text) == 0


def test_known_good_and_bad_specs_take_each_branch():
    """run_new() itself checks both outcomes: one good spec, one bad."""
    codes = {run_new(text) for text in (SHIPPED[0], SHIPPED[0].replace('"u8"', '"u9"'))}
    assert codes == {0, 2}


@settings(FUZZ, max_examples=300)
@given(st.text(), st.one_of(st.none(), st.text(max_size=12)))
def test_parse_spec_on_any_text_raises_only_spec_error(text, name):
    try:
        parse_spec(text, "fuzz.toml", name_override=name)
    except SpecError as exc:
        assert exc.problems and all(p.file == "fuzz.toml" for p in exc.problems)
        assert any(not p.warning for p in exc.problems)


@settings(FUZZ, max_examples=300)
@given(st.one_of(random_specs(), mutated_shipped_specs(), st.text(st.sampled_from('[]{}"=#.,\n abcmoduleentryname01'))))
def test_parse_spec_on_toml_like_text_raises_only_spec_error(text):
    try:
        parse_spec(text, "fuzz.toml")
    except SpecError as exc:
        assert exc.problems and any(not p.warning for p in exc.problems)


def _shape(spec):
    return [(e.path, e.type.name, e.mode, e.value, e.params) for e in spec.entries]


@settings(FUZZ, max_examples=200)
@given(st.one_of(valid_specs(), mutated_shipped_specs(), random_specs()), VALID_NAME)
def test_name_override_text_is_the_same_spec_with_the_new_name(text, name):
    try:
        spec = parse_spec(text, "fuzz.toml", name_override=name)
    except SpecError:
        return
    again = parse_spec(spec.text, "fuzz.toml")
    assert again.module == spec.module and again.module.name == name
    assert _shape(again) == _shape(spec)
