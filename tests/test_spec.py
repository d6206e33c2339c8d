"""Spec validation: every problem names its line, its entry and a fix.

Pure tests of parse_spec() on text.  Most specs here are built by `one()`:

    line 1  [module]
    line 2  name = "m"
    line 3  [[entry]]
    line 4  <first line of the body>
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from textwrap import dedent

import pytest

from dbgscaffold.kinds import TYPES
from dbgscaffold.kinds.string import MAX_STRING_SIZE
from dbgscaffold.spec import GPL_LICENSES, Problem, SpecError, parse_spec

SPECS = Path(__file__).resolve().parent.parent / "generator" / "specs"
HEAD = '[module]\nname = "m"\n[[entry]]\n'  # the body of one() starts on line 4


def one(body: str) -> str:
    """A module 'm' with one entry whose body starts on line 4."""
    return HEAD + dedent(body).lstrip("\n")


def entry(path: str, type_: str, *extra: str) -> str:
    """One-line-per-key entry body: path on line 4, type on line 5, extra from line 6."""
    return "\n".join([f'path = "{path}"', f'type = "{type_}"', *extra]) + "\n"


def problems(text: str, **kw) -> tuple[Problem, ...]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "t.toml", **kw)
    return info.value.problems


def errors(text: str, **kw) -> list[Problem]:
    return [p for p in problems(text, **kw) if not p.warning]


def only_error(text: str, **kw) -> Problem:
    found = errors(text, **kw)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def assert_problem(p: Problem, line: int, where: str, *fragments: str) -> None:
    assert (p.line, p.where) == (line, where), str(p)
    for fragment in fragments:
        assert fragment in str(p), f"{fragment!r} not in {p}"


def valid(text: str, **kw):
    return parse_spec(text, "t.toml", **kw)


# ---------------------------------------------------------------------------
# Syntax and structure


@pytest.mark.parametrize(
    "text, line, column",
    [
        (HEAD + 'path = "a\n', 4, 10),  # unterminated string
        (HEAD + 'path = "a"\ntype = u8\n', 5, 8),  # unquoted string
        ('[module]\nname = "m"\nlicense = "GPL" = 3\n', 3, 17),
    ],
)
def test_toml_syntax_error_has_line_and_column(text, line, column):
    p = only_error(text)
    assert (p.line, p.column, p.where) == (line, column, "")
    assert str(p).startswith(f"t.toml:{line}:{column}: error: TOML syntax error: ")
    assert "Fix: see https://toml.io" in str(p)


def test_deep_nesting_is_a_spec_error_not_a_recursion_error():
    p = only_error("a = " + "[" * 50_000)
    assert "nested too deeply" in p.message


@pytest.mark.parametrize(
    "text, line, key, hint",
    [
        ('[module]\nname = "m"\n\n[modules]\nx = 1\n', 4, "modules", "did you mean 'module'?"),
        ('[module]\nname = "m"\n\n[[entries]]\npath = "a"\n', 4, "entries", "did you mean 'entry'?"),
        ('colour = "red"\n[module]\nname = "m"\n', 1, "colour", ""),
        ('[module]\nname = "m"\n[[entry]]\npath = "a"\ntype = "u8"\n[zzz]\n', 6, "zzz", ""),
    ],
)
def test_unknown_top_level_key(text, line, key, hint):
    p = only_error(text)
    assert_problem(p, line, "", f"unknown top-level key '{key}'", hint, "Fix: the spec has a [module] table, [[entry]] tables, an [instance] table and a [test] table only")


@pytest.mark.parametrize(
    "key, hint",
    [("licence", "did you mean 'license'?"), ("nmae", "did you mean 'name'?"), ("authors", "did you mean 'author'?"), ("zzz", "")],
)
def test_unknown_module_key_with_did_you_mean(key, hint):
    p = only_error(f'[module]\nname = "m"\n# comment\n{key} = "GPL"\n')
    assert_problem(p, 4, "[module]", f"unknown key '{key}'", hint, "Fix: valid keys: name, description")
    if not hint:
        assert "did you mean" not in str(p)


@pytest.mark.parametrize(
    "key, hint",
    [("valeu", "did you mean 'value'?"), ("sise", "did you mean 'size'?"), ("lenght", "did you mean 'length'?"), ("colour", "")],
)
def test_unknown_entry_key_with_did_you_mean(key, hint):
    p = only_error(one(entry("a", "string", f"{key} = 1")))
    assert_problem(p, 6, "entry #1 'a'", f"unknown key '{key}'", hint, "valid keys: field, format, length, mode, path, registers, size, target, type, value")


@pytest.mark.parametrize(
    "type_, hint",
    [("strng", "did you mean 'string'?"), ("u32array", "did you mean 'u32_array'?"), ("boolean", "did you mean 'bool'?"), ("u9", ""), ("", "")],
)
def test_unknown_type_with_did_you_mean(type_, hint):
    p = only_error(one(entry("sub/c", type_)))
    assert_problem(p, 5, "entry #1 'sub/c'", f"unknown type '{type_}'", hint, "Fix: use one of: dir, u8, u16")
    if not hint:
        assert "did you mean" not in str(p)


def test_non_string_type_is_unknown():
    p = only_error(one('path = "a"\ntype = 8\n'))
    assert_problem(p, 5, "entry #1 'a'", "unknown type '8'")


def test_missing_module_table():
    p = only_error('# no module\n[[entry]]\npath = "a"\ntype = "u8"\n')
    assert_problem(p, 0, "", "the spec has no [module] table", 'Fix: add [module] with at least name = "mymod"')
    assert str(p).startswith("t.toml: error: ")


def test_missing_module_name():
    p = only_error('# header\n[module]\nlicense = "GPL"\n')
    assert_problem(p, 2, "[module]", "missing required key 'name'")


def test_missing_path_is_reported_at_the_entry_header():
    p = only_error(one('type = "u8"\n'))
    assert_problem(p, 3, "entry #1", "missing required key 'path'", 'add path = "name"')


def test_missing_type_is_reported_at_the_entry_header():
    text = one(entry("a", "u8")) + '\n[[entry]]\npath = "subdir/c"\nvalue = 1\n'
    p = only_error(text)
    assert_problem(p, 7, "entry #2 'subdir/c'", "missing required key 'type'", "add type = one of: dir, u8")


def test_entry_must_be_a_table():
    p = only_error('entry = [1]\n[module]\nname = "m"\n')
    assert_problem(p, 1, "entry #1", "an entry must be a table, not an integer")


def test_single_bracket_entry_table_is_reported_at_its_header():
    p = only_error('[module]\nname = "m"\n\n[entry]\npath = "a"\n')
    assert_problem(p, 4, "", "'entry' must be an array of tables", "[[entry]], with two brackets")


# ---------------------------------------------------------------------------
# Paths and names


def test_duplicate_paths_name_both_entries():
    text = one(entry("a", "u8")) + '\n[[entry]]\npath = "a"\ntype = "bool"\n'
    p = only_error(text)
    assert_problem(p, 7, "entry #2 'a'", "duplicate path: entry #1 (line 3) already declares 'a'", "Fix: remove one of them")


@pytest.mark.parametrize("order", ["file first", "dir first"])
def test_path_used_as_file_and_directory(order):
    file_, child = entry("a", "u8"), entry("a/b", "u16")
    first, second = (file_, child) if order == "file first" else (child, file_)
    p = only_error(one(first) + "[[entry]]\n" + second)
    assert_problem(
        p,
        3 if order == "dir first" else 6,
        "entry #2 'a/b'" if order == "file first" else "entry #1 'a/b'",
        "'a' is used as a directory here but entry #",
        "declares it a u8 file",
    )


def test_explicit_dir_with_children_is_fine():
    spec = valid(one(entry("d", "dir")) + "[[entry]]\n" + entry("d/x", "u8"))
    assert spec.directories == ("d",)


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("", "has an empty component"),
        ("a//b", "has an empty component"),
        ("/a", "has an empty component"),
        ("a/", "has an empty component"),
        (".", "has a '.' component"),
        ("a/./b", "has a '.' component"),
        ("..", "has a '..' component"),
        ("../etc", "has a '..' component"),
        ("a b", "component 'a b' has characters outside [A-Za-z0-9_.-]: ' '"),
        ("dir/*", "component '*' has characters outside [A-Za-z0-9_.-]: '*'"),
        ("caf\u00e9", "has characters outside [A-Za-z0-9_.-]: '\u00e9'"),
        ("a\\n", "has characters outside [A-Za-z0-9_.-]: '\\n'"),  # TOML escape: a real newline
        ("x" * 61, "is 61 characters long (at most 60)"),
    ],
)
def test_bad_path(path, fragment):
    p = only_error(one(entry(path, "u8")))
    raw = tomllib.loads(f'p = "{path}"')["p"]
    assert_problem(p, 4, f"entry #1 '{raw}'", "path ", fragment, "Fix: use names of letters, digits")


def test_non_string_path():
    p = only_error(one("path = 5\ntype = \"u8\"\n"))
    assert_problem(p, 4, "entry #1", "'path' must be a string, not an integer")


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("int", "is reserved"),
        ("module", "is reserved"),
        ("debugfs", "is reserved"),
        ("Bad-Name", "is not a lower-case C identifier"),
        ("Mod", "is not a lower-case C identifier"),
        ("9lives", "not starting with a digit"),
        ("", "is not a lower-case C identifier"),
        ("m" * 56, "56 characters long; the kernel allows 55"),
    ],
)
def test_bad_module_name(name, fragment):
    p = only_error(f'[module]\n# the name\nname = "{name}"\n')
    assert_problem(p, 3, "[module]", fragment, "Fix: use something like 'mydebug'")


def test_module_name_of_55_characters_is_fine():
    assert valid(f'[module]\nname = "{"m" * 55}"\n').module.name == "m" * 55


@pytest.mark.parametrize("name", ["int", "Bad-Name", "9lives", "abc\n", "x" * 56])
def test_bad_module_name_from_the_command_line(name):
    p = only_error('[module]\nname = "fine"\n', name_override=name)
    assert_problem(p, 0, "module name from the command line", "module name")


# ---------------------------------------------------------------------------
# Modes


@pytest.mark.parametrize(
    "mode, fragment, fix",
    [
        ("644", "mode must be a quoted 4-digit octal string, not the integer 644", 'write mode = "0644"'),
        ("0o644", "not the integer 420", 'write mode = "0644"'),
        ('"644"', "mode '644' is not a 4-digit octal string", 'write mode = "0644"'),
        ('"0x1a4"', "mode '0x1a4' is not a 4-digit octal string", "write four octal digits"),
        ('"08888"', "mode '08888' is not a 4-digit octal string", "write four octal digits"),
        ('"00644"', "mode '00644' is not a 4-digit octal string", "write four octal digits"),
        ('"0644\\n"', "is not a 4-digit octal string", "write four octal digits"),
        ('"rw-r--r--"', "is not a 4-digit octal string", "write four octal digits"),
        ("true", "mode 'a boolean' is not a 4-digit octal string", "write four octal digits"),
    ],
)
def test_mode_must_be_a_four_digit_octal_string(mode, fragment, fix):
    p = only_error(one(entry("a", "u8", f"mode = {mode}")))
    assert_problem(p, 6, "entry #1 'a'", fragment, fix)


@pytest.mark.parametrize("mode", ["0646", "0666", "0602", "0442"])
def test_other_writable_mode_is_an_error(mode):
    p = only_error(one(entry("a", "u8", f'mode = "{mode}"')))
    assert_problem(p, 6, "entry #1 'a'", "world-writable", "Fix: use ")


@pytest.mark.parametrize("mode", ["0664", "0620", "0660"])
def test_group_writable_mode_is_only_a_warning(mode):
    spec = valid(one(entry("a", "u8", f'mode = "{mode}"')))
    assert spec.entries[0].mode == int(mode, 8)
    (w,) = spec.warnings
    assert w.warning and (w.line, w.where) == (6, "entry #1 'a'")
    assert str(w).startswith("t.toml:6: warning: entry #1 'a': ")
    assert "lets the group write" in w.message


@pytest.mark.parametrize("mode", ["0744", "0654", "0645", "0755", "0100"])
def test_exec_bits_are_an_error(mode):
    found = errors(one(entry("a", "u8", f'mode = "{mode}"')))
    assert any("has execute bits" in p.message and p.line == 6 for p in found), found


@pytest.mark.parametrize("type_", ["u32_array", "seq"])
@pytest.mark.parametrize("mode", ["0644", "0600", "0200"])
def test_write_bits_on_read_only_types_are_an_error(type_, mode):
    p = only_error(one(entry("t", type_, f'mode = "{mode}"', *(["length = 1"] if type_ == "u32_array" else []))))
    assert_problem(p, 6, "entry #1 't'", f"a {type_} entry is read-only, but mode {mode} has write bits", 'Fix: use "0')


@pytest.mark.parametrize("type_", ["u32_array", "seq", "blob"])
def test_read_only_modes_are_fine_on_read_only_types(type_):
    extra = ["length = 1"] if type_ == "u32_array" else []
    spec = valid(one(entry("t", type_, 'mode = "0400"', *extra)))
    assert spec.entries[0].mode == 0o400 and not spec.warnings


def test_write_bits_on_blob_are_a_warning():
    spec = valid(one(entry("b", "blob", 'mode = "0644"')))
    (w,) = spec.warnings
    assert (w.line, w.where, w.warning) == (6, "entry #1 'b'", True)
    assert "writable only on Linux 6.8 and later" in w.message


def test_mode_without_any_access_is_an_error():
    p = only_error(one(entry("a", "u8", 'mode = "0000"')))
    assert_problem(p, 6, "entry #1 'a'", "gives nobody read or write access")


def test_directory_with_a_mode_is_an_error():
    p = only_error(one(entry("d", "dir", 'mode = "0755"')))
    assert_problem(p, 6, "entry #1 'd'", "a directory takes no mode", "Fix: remove the mode line")


@pytest.mark.parametrize(
    "type_, key, users",
    [
        ("u8", "size = 4", "string"),
        ("string", "length = 4", "u32_array"),
        ("seq", 'value = "x"', "atomic_t, attribute, blob, bool, custom, size_t, string, u16"),
        ("u8", 'target = "x"', "symlink"),
        ("u8", 'registers = []', "regset32"),
        ("blob", 'format = "%llu"', "attribute"),
        ("dir", "value = 1", "atomic_t"),
        ("bool", "length = 1", "u32_array"),
    ],
)
def test_key_not_applicable_to_type(type_, key, users):
    p = only_error(one(entry("a", type_, key)))
    name = key.split()[0]
    assert_problem(p, 6, "entry #1 'a'", f"key '{name}' does not apply to type '{type_}'", f"applies to: {users}")


def test_default_modes_come_from_the_type_table():
    required = {"u32_array": ["length = 1"], "regset32": ['registers = [{ name = "R", offset = 0 }]'], "symlink": ['target = "b"']}
    for name, t in TYPES.items():
        spec = valid(one(entry("a", name, *required.get(name, []))) + "[[entry]]\n" + entry("b", "u8"))
        assert spec.entries[0].mode_octal == ("" if not t.kind.takes_mode else t.default_mode), name


# ---------------------------------------------------------------------------
# Values


INT_RANGES = [
    ("u8", 0, 255),
    ("x8", 0, 255),
    ("u16", 0, 65535),
    ("x16", 0, 65535),
    ("u32", 0, 2**32 - 1),
    ("x32", 0, 2**32 - 1),
    ("u64", 0, 2**64 - 1),
    ("x64", 0, 2**64 - 1),
    ("size_t", 0, 2**32 - 1),
    ("ulong", 0, 2**32 - 1),
    ("atomic_t", -(2**31), 2**31 - 1),
]


@pytest.mark.parametrize("type_, low, high", INT_RANGES)
def test_integer_limits_are_accepted(type_, low, high):
    for value in (low, high):
        assert valid(one(entry("a", type_, f"value = {value}"))).entries[0].value == value


@pytest.mark.parametrize("type_, low, high", INT_RANGES)
@pytest.mark.parametrize("side", ["below", "above"])
def test_integer_out_of_range(type_, low, high, side):
    value = low - 1 if side == "below" else high + 1
    p = only_error(one(entry("a", type_, f"value = {value}")))
    assert_problem(p, 6, "entry #1 'a'", f"value {value} is out of range for {type_} ({low}..{high})", f"use a value from {low} to {high}")


@pytest.mark.parametrize("type_", ["u8", "u64", "x8", "atomic_t", "size_t"])
@pytest.mark.parametrize("value, described", [("true", "a boolean"), ("false", "a boolean"), ('"5"', "a string"), ("5.0", "a float"), ("[5]", "an array")])
def test_integer_type_rejects_non_integers_including_booleans(type_, value, described):
    p = only_error(one(entry("a", type_, f"value = {value}")))
    assert_problem(p, 6, "entry #1 'a'", f"a {type_} value must be an integer, not {described}", "no quotes")


@pytest.mark.parametrize("value, described", [("1", "an integer"), ("0", "an integer"), ('"true"', "a string"), ('"Y"', "a string")])
def test_bool_rejects_non_booleans(value, described):
    p = only_error(one(entry("f", "bool", f"value = {value}")))
    assert_problem(p, 6, "entry #1 'f'", f"a bool value must be true or false, not {described}", "value = true or value = false")


@pytest.mark.parametrize("value", [True, False])
def test_bool_accepts_booleans(value):
    assert valid(one(entry("f", "bool", f"value = {str(value).lower()}"))).entries[0].value is value


@pytest.mark.parametrize(
    "size, value",
    [(4, "abcd"), (2, "ab"), (5, "\u00e9\u00e9\u00e9")],  # bytes, not characters: 3 x 2 bytes
)
def test_string_value_must_fit_size_minus_one(size, value):
    p = only_error(one(entry("s", "string", f"size = {size}", f'value = "{value}"')))
    n = len(value.encode())
    assert_problem(p, 7, "entry #1 's'", f"value is {n} bytes but the buffer holds size - 1 = {size - 1}", f"raise size to at least {n + 1}")


def test_string_value_of_exactly_size_minus_one_fits():
    spec = valid(one(entry("s", "string", "size = 4", 'value = "abc"')))
    assert (spec.entries[0].param("size"), spec.entries[0].value) == (4, b"abc")


@pytest.mark.parametrize("size", [0, 1, MAX_STRING_SIZE + 1, -5])
def test_string_size_out_of_range(size):
    p = only_error(one(entry("s", "string", f"size = {size}")))
    assert_problem(p, 6, "entry #1 's'", f"size {size} is out of range (2..{MAX_STRING_SIZE} bytes")


@pytest.mark.parametrize("size", ["true", '"32"'])
def test_string_size_must_be_an_integer(size):
    p = only_error(one(entry("s", "string", f"size = {size}")))
    assert_problem(p, 6, "entry #1 's'", "size must be an integer")


def test_string_without_size_gets_room_for_its_value():
    assert valid(one(entry("s", "string", f'value = "{"x" * 100}"'))).entries[0].param("size") == 101
    assert valid(one(entry("s", "string"))).entries[0].param("size") == 64


def test_string_value_too_long_for_any_buffer_without_size():
    p = only_error(one(entry("s", "string", f'value = "{"x" * MAX_STRING_SIZE}"')))
    assert_problem(p, 6, "entry #1 's'", f"value is {MAX_STRING_SIZE} bytes; a string holds at most {MAX_STRING_SIZE - 1}")


def test_string_value_of_the_largest_size_fits_without_size():
    spec = valid(one(entry("s", "string", f'value = "{"x" * (MAX_STRING_SIZE - 1)}"')))
    assert spec.entries[0].param("size") == MAX_STRING_SIZE


def test_u32_array_longer_than_length():
    p = only_error(one(entry("t", "u32_array", "length = 2", "value = [1, 2, 3]")))
    assert_problem(p, 7, "entry #1 't'", "3 values do not fit length 2", "raise length to 3")


def test_u32_array_shorter_than_length_is_padded_later():
    e = valid(one(entry("t", "u32_array", "length = 4", "value = [1, 2]"))).entries[0]
    assert (e.param("length"), e.value) == (4, (1, 2))


@pytest.mark.parametrize("element, shown", [("-1", "-1"), (str(2**32), str(2**32)), ("true", "True"), ('"1"', "'1'"), ("1.5", "1.5")])
def test_u32_array_element_out_of_range(element, shown):
    p = only_error(one(entry("t", "u32_array", "length = 3", f"value = [0, {element}, {2**32 - 1}]")))
    assert_problem(p, 7, "entry #1 't'", f"element 1 ({shown}) is not a u32 (0..{2**32 - 1})")


@pytest.mark.parametrize("length, fragment", [("0", "array length 0 is out of range"), ("1025", "array length 1025 is out of range"), ("true", "length must be an integer, not a boolean")])
def test_u32_array_length_must_be_sane(length, fragment):
    p = only_error(one(entry("t", "u32_array", f"length = {length}")))
    assert_problem(p, 6, "entry #1 't'", fragment)


def test_u32_array_needs_a_length_or_values():
    p = only_error(one(entry("t", "u32_array")))
    assert_problem(p, 3, "entry #1 't'", "array length 0 is out of range")


@pytest.mark.parametrize("type_, limit", [("custom", 255), ("blob", 65536)])
def test_byte_values_have_limits(type_, limit):
    assert valid(one(entry("v", type_, f'value = "{"x" * limit}"')))
    p = only_error(one(entry("v", type_, f'value = "{"x" * (limit + 1)}"')))
    assert_problem(p, 6, "entry #1 'v'", f"{limit + 1} bytes")


@pytest.mark.parametrize("type_", ["blob", "string", "custom"])
def test_text_types_reject_non_strings(type_):
    p = only_error(one(entry("v", type_, "value = 5")))
    assert_problem(p, 6, "entry #1 'v'", f"a {type_} value must be a string, not an integer")


# ---------------------------------------------------------------------------
# [module]


@pytest.mark.parametrize("license_", ["MIT", "BSD", "Proprietary", "GPL-2.0", "gpl", "Dual BSD/MIT"])
def test_non_gpl_license_is_rejected(license_):
    p = only_error(f'[module]\nname = "m"\nlicense = "{license_}"\n')
    assert_problem(p, 3, "[module]", f"license '{license_}' is not GPL-compatible", 'use one of: "GPL", "GPL v2"')


@pytest.mark.parametrize("license_", sorted(GPL_LICENSES))
def test_gpl_compatible_license_is_accepted(license_):
    module = valid(f'[module]\nname = "m"\nlicense = "{license_}"\n').module
    assert (module.license, module.spdx) == (license_, GPL_LICENSES[license_])
    assert module.spdx.startswith("GPL-2.0")


def test_description_and_author_of_sixty_characters_are_fine():
    module = valid(f'[module]\nname = "m"\ndescription = "{"d" * 60}"\nauthor = "{"a" * 60}"\n').module
    assert (module.description, module.author) == ("d" * 60, "a" * 60)


def test_module_defaults():
    module = valid('[module]\nname = "m"\n').module
    assert (module.license, module.version, module.root) == ("GPL", "0.1.0", "m")


@pytest.mark.parametrize(
    "line, fragment",
    [
        ('description = "' + "d" * 100 + '"', "'description' takes 102 columns as a C string"),
        ('description = "' + "\u00e9" * 20 + '"', "'description' takes 162 columns as a C string"),  # octal escapes
        ('author = "' + "a" * 100 + '"', "'author' takes 102 columns as a C string"),
        ('version = "v 1"', "version 'v 1' is not a plain version string"),
        ('version = "1.0\\n"', "'version' contains control characters"),
        ('root = "a/b"', "root directory component 'a/b' has characters outside"),
        ('root = ".."', "root directory has a '..' component"),
        ("author = 5", "'author' must be a string, not an integer"),
    ],
)
def test_bad_module_values(line, fragment):
    p = only_error(f'[module]\nname = "m"\n{line}\n')
    assert_problem(p, 3, "[module]", fragment)


# ---------------------------------------------------------------------------
# C names


@pytest.mark.parametrize(
    "first, second, path, other, cname",
    [
        ("a-b", "a_b", "a_b", "a-b", "a_b"),
        ("a.b", "a-b", "a-b", "a.b", "a_b"),
        ("x-y/f", "x_y", "x_y", "x-y", "x_y"),  # an implied directory
        ("p-q/f", "p_q/g", "p_q", "p-q", "p_q"),  # two implied directories
    ],
)
def test_c_name_collision(first, second, path, other, cname):
    p = only_error(one(entry(first, "u8")) + "[[entry]]\n" + entry(second, "u16"))
    assert_problem(p, 6, f"entry #2 '{second}'", f"'{path}' and '{other}' both become the C name '{cname}'", "differ in more than '.', '-' and '_'")


@pytest.mark.parametrize(
    "first, second, ident, owner",
    [
        ("a:u8", "root:u8", "m_root", "the module's root directory"),
        ("a:u8", "init:bool", "m_init", "the module's init function"),
        ("a:u8", "exit:seq", "m_exit", "the module's exit function"),
        ("x:blob", "x_data:u8", "m_x_data", "entry #1 'x'"),
        ("s:string", "s_data:custom", "m_s_data", "entry #1 's'"),
        ("q:seq", "q_fops:u32", "m_q_fops", "entry #1 'q'"),
        ("c:custom", "c_write:u8", "m_c_write", "entry #1 'c'"),
        ("x_data:u8", "x:blob", "m_x_data", "entry #1 'x_data'"),
    ],
)
def test_c_name_clash_with_generated_identifiers(first, second, ident, owner):
    (p1, t1), (p2, t2) = (s.split(":") for s in (first, second))
    p = only_error(one(entry(p1, t1)) + "[[entry]]\n" + entry(p2, t2))
    assert_problem(p, 6, f"entry #2 '{p2}'", f"'{p2}' needs the C name '{ident}', which is also used by {owner}", "Fix: rename the entry")


def test_directories_need_no_c_names_of_their_own():
    """<name>_init() keeps directories in d[] and the root in `root`: a module 'dir' with a
    directory 'root' (once the clash dir_root = <name>_root) is fine."""
    assert valid('[module]\nname = "dir"\n[[entry]]\npath = "root/a"\ntype = "u8"\n').entries[0].path == "root/a"


def test_similar_but_distinct_generated_names_are_fine():
    text = one(entry("x", "blob")) + "[[entry]]\n" + entry("x_dat", "u8") + "[[entry]]\n" + entry("data/x", "u8")
    assert len(valid(text).entries) == 3


@pytest.mark.parametrize("module, path", [("m", "p" * 54), ("longer_name", "d/" + "e" * 42)])
def test_overlong_generated_c_identifier(module, path):
    text = f'[module]\nname = "{module}"\n[[entry]]\n' + entry(path, "u8")
    p = only_error(text)
    ident = f"{module}_{path.replace('/', '_')}"
    assert len(ident) == 56
    assert_problem(p, 3, f"entry #1 '{path}'", f"the C name '{ident}' is 56 characters long; at most 55", "shorten the path or the module name")


def test_generated_c_identifier_of_55_characters_is_fine():
    assert valid(one(entry("p" * 53, "u8")))


# ---------------------------------------------------------------------------
# All at once


def test_all_problems_are_reported_at_once():
    text = dedent(
        """\
        [module]
        name = "m"
        license = "MIT"

        [[entry]]
        path = "a"
        type = "u8"
        value = 256

        [[entry]]
        path = "b"
        type = "strng"
        """
    ) + '\n[[entry]]\npath = "c"\ntype = "u8"\nmode = "0666"\n'
    found = errors(text)
    assert [(p.line, p.where) for p in found] == [(3, "[module]"), (8, "entry #1 'a'"), (12, "entry #2 'b'"), (17, "entry #3 'c'")]
    assert "license 'MIT'" in found[0].message
    assert "value 256 is out of range" in found[1].message
    assert "unknown type 'strng'" in found[2].message
    assert "world-writable" in found[3].message


def test_three_independent_entry_errors_make_three_problems():
    text = one(entry("a", "u8", "value = -1")) + "[[entry]]\n" + entry("b", "bool", "value = 2") + "[[entry]]\n" + entry("c", "u32_array", "length = 0")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "t.toml")
    assert len(info.value.problems) == 3
    assert str(info.value).endswith("\n3 errors in spec")


def test_spec_error_counts_errors_not_warnings():
    text = one(entry("a", "u8", 'mode = "0664"', "value = 300"))
    with pytest.raises(SpecError) as info:
        parse_spec(text, "t.toml")
    assert sorted(p.warning for p in info.value.problems) == [False, True]
    assert str(info.value).endswith("\n1 error in spec")


# ---------------------------------------------------------------------------
# Problem formatting


@pytest.mark.parametrize(
    "problem, text",
    [
        (Problem("f.toml", 3, "entry #3 'subdir/c'", "bad thing", "do x."), "f.toml:3: error: entry #3 'subdir/c': bad thing. Fix: do x."),
        (Problem("f.toml", 3, "[module]", "ends with a dot.", "do x."), "f.toml:3: error: [module]: ends with a dot. Fix: do x."),
        (Problem("f.toml", 3, "[module]", "did you mean 'x'?", "y"), "f.toml:3: error: [module]: did you mean 'x'? Fix: y"),
        (Problem("f.toml", 4, "", "syntax", "see toml.io", column=7), "f.toml:4:7: error: syntax. Fix: see toml.io"),
        (Problem("f.toml", 0, "", "no module", "add it"), "f.toml: error: no module. Fix: add it"),
        (Problem("f.toml", 5, "entry #1 'a'", "group", "prefer 0644", warning=True), "f.toml:5: warning: entry #1 'a': group. Fix: prefer 0644"),
        (Problem("f.toml", 5, "entry #1 'a'", "no fix"), "f.toml:5: error: entry #1 'a': no fix"),
    ],
)
def test_problem_str(problem, text):
    assert str(problem) == text


def test_real_problems_have_the_documented_form():
    p = only_error(one(entry("subdir/c", "u8", "value = 300")))
    assert re.fullmatch(r"t\.toml:6: error: entry #1 'subdir/c': value 300 is out of range for u8 \(0\.\.255\)\. Fix: .+", str(p))


# ---------------------------------------------------------------------------
# Name override


def test_name_override_replaces_the_name_and_keeps_the_comment():
    text = '# top\n[module]\nname = "old"   # the name\nlicense = "GPL"\n'
    spec = valid(text, name_override="new")
    assert spec.module.name == "new"
    assert spec.text == '# top\n[module]\nname = "new"   # the name\nlicense = "GPL"\n'


def test_name_override_inserts_a_missing_name_after_the_header():
    text = '# top\n[module]\n# comment\nlicense = "GPL"\n'
    spec = valid(text, name_override="new")
    assert spec.text == '# top\n[module]\nname = "new"\n# comment\nlicense = "GPL"\n'


def test_name_override_inserts_a_missing_module_and_keeps_comments():
    text = "# my entries\n[[entry]]  # first\npath = \"a\"\ntype = \"u8\"\n"
    spec = valid(text, name_override="new")
    assert spec.module.name == "new"
    assert spec.text.endswith(text)
    assert tomllib.loads(spec.text)["module"] == {"name": "new"}


@pytest.mark.parametrize(
    "text",
    [
        '[module]',  # header at the end of the file, without a newline
        '[module]\r\nname = "old"\r\n',
        'entry = [{path = "a", type = "u8"}]\n',  # top-level keys must stay top-level
        'entry = [{path = "a", type = "u8"}]  # no newline',
        '[module]\nname = "old"\n[[entry]]\npath = "a"\ntype = "u8"',
    ],
)
def test_name_override_text_is_an_equivalent_spec(text):
    spec = valid(text, name_override="new")
    again = valid(spec.text)
    assert again.module == spec.module and again.entries == spec.entries
    assert again.module.name == "new"


@pytest.mark.parametrize(
    "text, line",
    [
        ('module = {name = "old"}\n', 1),
        ('# the module\nmodule.name = "old"\n', 2),
        ('[module]\nname = """\nold"""\n', 2),
    ],
)
def test_name_override_that_cannot_be_written_is_an_error_not_a_broken_spec(text, line):
    assert valid(text).module.name == "old"
    p = only_error(text, name_override="new")
    assert_problem(p, line, "[module]", "cannot write the module name from the command line", "Fix: write [module] as a table")


def test_without_override_the_text_is_kept_verbatim():
    text = (SPECS / "example.toml").read_text(encoding="utf-8")
    assert valid(text).text == text


# ---------------------------------------------------------------------------
# The shipped specs


@pytest.mark.parametrize("name", ["classic.toml", "example.toml"])
def test_shipped_specs_are_clean(name):
    spec = parse_spec((SPECS / name).read_text(encoding="utf-8"), name)
    assert spec.warnings == ()
    assert spec.entries


def test_classic_spec_is_the_classic_example():
    spec = valid((SPECS / "classic.toml").read_text(encoding="utf-8"), name_override="mydebug")
    assert [(e.path, e.type.name, e.mode_octal) for e in spec.entries] == [
        ("a", "u8", "0644"),
        ("b", "blob", "0444"),
        ("subdir/c", "string", "0644"),
    ]


def test_example_spec_uses_every_type():
    spec = valid((SPECS / "example.toml").read_text(encoding="utf-8"))
    assert sorted({e.type.name for e in spec.entries}) == sorted(TYPES)


# ---------------------------------------------------------------------------
# The driver kinds: attribute, regset32, symlink


REGS = 'registers = [ { name = "CTRL", offset = 0x0 }, { name = "STATUS", offset = 0x4, value = 0x80000001 } ]'


def test_the_driver_kinds_parse_into_their_params():
    text = (one(entry("threshold", "attribute", 'format = "0x%08llx\\n"', "value = 7")) + "[[entry]]\n" + entry("regs", "regset32", REGS)
            + "[[entry]]\n" + entry("sub/latest", "symlink", 'target = "regs"'))
    attr, regs, link = valid(text).entries
    assert (attr.value, attr.param("format"), attr.mode_octal) == (7, "0x%08llx\n", "0644")
    assert [(r.name, r.offset, r.value) for r in regs.param("registers")] == [("CTRL", 0, 0), ("STATUS", 4, 0x80000001)]
    assert regs.mode_octal == "0444" and regs.kind.reads(regs, (6, 1)) == b"CTRL = 0x00000000\nSTATUS = 0x80000001\n"
    assert link.mode is None and link.kind.link_text(link) == "../regs"


@pytest.mark.parametrize("registers, fragment", [
    ('[ { name = "CTRL", offset = 0x0, width = 32 } ]', "register 0: unknown field 'width'"),
    ('[ { name = "CTRL", offset = 0x2 } ]', "register 0: offset 0x2 is not a multiple of 4"),
    ('[ { name = "A", offset = 0 }, { name = "A", offset = 4 } ]', "register 1: name 'A' is also register 0's"),
    ('[ { name = "A", offset = 4 }, { name = "B", offset = 4 } ]', "register 1: offset 0x4 is also register 'A''s"),
    ('[ { name = "C TRL", offset = 0 } ]', "is not a C-like identifier"),
    ('[ { name = "A", offset = 0x10000 } ]', "is not an integer from 0 to 0xfffc"),
    ('[ { name = "A", offset = 0, value = -1 } ]', "value -1 is not a u32"),
    ("[]", "'registers' must be a non-empty array of tables"),
    ('"CTRL"', "'registers' must be a non-empty array of tables, not a string"),
])
def test_bad_registers_are_reported_on_their_line(registers, fragment):
    p = only_error(one(entry("regs", "regset32", f"registers = {registers}")))
    assert_problem(p, 6, "entry #1 'regs'", fragment, "Fix:")


def test_a_regset32_needs_registers():
    assert_problem(only_error(one(entry("regs", "regset32"))), 3, "entry #1 'regs'", "a regset32 entry needs 'registers'")


@pytest.mark.parametrize("target, fragment", [
    ("missing", "the target 'missing' is not an entry or directory of this spec"),
    ("link", "the symlink points at itself"),
    ("other", "the target 'other' is itself a symlink"),
])
def test_bad_symlink_targets(target, fragment):
    text = (one(entry("link", "symlink", f'target = "{target}"')) + "[[entry]]\n" + entry("other", "symlink", 'target = "d/x"')
            + "[[entry]]\n" + entry("d/x", "u8"))
    assert_problem(only_error(text), 3, "entry #1 'link'", fragment, "Fix:")


def test_an_empty_symlink_target_is_an_error():
    assert_problem(only_error(one(entry("link", "symlink", 'target = "/"'))), 6, "entry #1 'link'", "'target' is empty", "Fix:")


def test_a_tree_of_more_than_64_directories_is_refused():
    text = HEAD.removesuffix("[[entry]]\n") + "".join(f'[[entry]]\npath = "d{i}/f"\ntype = "u8"\n' for i in range(65))
    p = only_error(text)
    assert "the tree has 65 directories; at most 64" in p.message and p.where == "entry #65 'd64/f'"


def test_a_symlink_may_point_at_an_implied_directory_and_takes_no_mode():
    text = one(entry("link", "symlink", 'target = "d"')) + "[[entry]]\n" + entry("d/x", "u8")
    assert valid(text).entries[0].kind.link_text(valid(text).entries[0]) == "d"
    p = only_error(one(entry("link", "symlink", 'target = "d"', 'mode = "0644"')) + "[[entry]]\n" + entry("d/x", "u8"))
    assert_problem(p, 7, "entry #1 'link'", "a symlink takes no mode", "Fix: remove the mode line")
    assert_problem(only_error(one(entry("link", "symlink"))), 3, "entry #1 'link'", "a symlink needs a 'target'")


@pytest.mark.parametrize("fmt, fragment", [
    ('"%llu %llu\\n"', "exactly one conversion"),
    ('"%lld\\n"', "exactly one conversion"),
    ('"%d\\n"', "exactly one conversion"),
    ('"100%% %llu\\n"', "no other %"),
    ('"value of the threshold=%llu\\n"', "the kernel keeps 23"),
    ('"%llu\\t\\n"', "printable ASCII and a final newline only"),
    ('"%#llu\\n"', "gcc warns about its flags"),
    ('"%-08llx\\n"', "gcc warns about its flags"),
    ("5", "format must be a string"),
])
def test_bad_attribute_formats(fmt, fragment):
    p = only_error(one(entry("t", "attribute", f"format = {fmt}")))
    assert_problem(p, 6, "entry #1 't'", fragment, "Fix:")


def test_attribute_reads_are_matched_by_the_formats_shape():
    import re

    from dbgscaffold.kinds.attribute import python_format, shape

    for fmt, value in (("%llu\n", 0), ("0x%016llx\n", 2**64 - 1), ("%#llX", 255), ("v=%20llu\n", 12), ("%-8llu|\n", 3)):
        printed = python_format(fmt) % value
        assert re.fullmatch(shape(fmt), printed.removesuffix("\n")), (fmt, printed)
    assert not re.fullmatch(shape("0x%08llx\n"), "12")


def test_a_bad_driver_spec_writes_nothing_and_exits_2(tmp_path):
    from conftest import run_cli

    (tmp_path / "bad.toml").write_text(one(entry("regs", "regset32", 'registers = [ { name = "CTRL", offset = 0x1 } ]')))
    r = run_cli("new", "--spec", str(tmp_path / "bad.toml"), "-o", str(tmp_path / "out"))
    assert r.exit_code == 2 and "offset 0x1 is not a multiple of 4" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# [instance]

MOD = '[module]\nname = "m"\n'
INSTANCE = '[instance]\nstruct = "mydev"\ndemo = ["dev0", "dev1"]\n\n[[instance.entry]]\npath = "count"\ntype = "u32"\nfield = "count"\n'


def test_an_instance_parses_with_its_entries():
    spec = valid(MOD + INSTANCE)
    inst = spec.instance
    assert (inst.struct, inst.demo, inst.header, inst.dir_field) == ("mydev", ("dev0", "dev1"), "", "debugfs_dir")
    e = inst.entries[0]
    assert e.instance and e.field == "count" and e.where == "instance entry #1 'count'" and not spec.entries
    assert (e.line, inst.entries[0].param("field")) == (7, "count")


@pytest.mark.parametrize("text, line, where, fragment", [
    (one(entry("a", "u8", 'field = "a"')), 6, "entry #1 'a'", "'field' applies only to the entries of [instance]"),
    (MOD + INSTANCE.replace('["dev0", "dev1"]', '["dev0", "dev0"]'), 5, "[instance]", "demo instance 'dev0' is named twice"),
    (MOD + INSTANCE.replace('type = "u32"', 'type = "custom"'), 9, "instance entry #1 'count'", "a custom entry is module-wide only"),
    (MOD + INSTANCE.replace('field = "count"\n', ''), 7, "instance entry #1 'count'", "needs 'field'"),
    (MOD + INSTANCE.replace('field = "count"', 'field = "2x"'), 10, "instance entry #1 'count'", "field '2x' is not a C identifier"),
    (MOD + INSTANCE.replace('struct = "mydev"\n', ''), 3, "[instance]", "missing required key 'struct'"),
    (MOD + INSTANCE.replace('struct = "mydev"', 'struct = "my dev"'), 4, "[instance]", "struct 'my dev' is not a C identifier"),
    (MOD + INSTANCE.replace('demo = ', 'header = "mydrv.h"\ndemo = '), 6, "[instance]", "demo instances need the struct declared by the generated header"),
    (MOD + INSTANCE.replace('demo = ', 'sturct = 1\ndemo = '), 5, "[instance]", "unknown key 'sturct'; did you mean 'struct'?"),
    (MOD + INSTANCE + '\n[[instance.entry]]\npath = "c2"\ntype = "u8"\nfield = "count"\n', 12, "instance entry #2 'c2'", "needs the member 'count', which instance entry #1 'count' has"),
    (MOD + INSTANCE.replace('field = "count"', 'field = "debugfs_dir"'), 7, "instance entry #1 'count'", "the instance's directory (dir_field)"),
    (MOD + INSTANCE + '\n[[instance.entry]]\npath = "r"\ntype = "regset32"\nfield = "count"\nregisters = [{ name = "A", offset = 0 }]\n'
     .replace('field = "count"\nreg', 'field = "cou"\nreg') + '\n[[instance.entry]]\npath = "m"\ntype = "u8"\nfield = "cou_mem"\n', 18,
     "instance entry #3 'm'", "needs the member 'cou_mem', which instance entry #2 'r' has"),
    (MOD + INSTANCE.replace('type = "u32"', 'type = "string"') + '\n[[instance.entry]]\npath = "d"\ntype = "u8"\nfield = "count_data"\n', 12,
     "instance entry #2 'd'", "needs the member 'count_data', which instance entry #1 'count' has"),
    (MOD + INSTANCE.replace('type = "u32"', 'type = "string"\nvalue = "abc"\nsize = 3'), 10, "instance entry #1 'count'",
     "value is 3 bytes but the buffer holds size - 1 = 2"),
    (MOD + INSTANCE.replace('type = "u32"', 'type = "string"\nvalue = "a\\u0000b"'), 7, "instance entry #1 'count'",
     "a device's string is NUL-terminated text"),
    (MOD + INSTANCE.replace('field = "count"', 'field = "default"'), 7, "instance entry #1 'count'", "field 'default' is a C keyword"),
    (MOD + INSTANCE.replace('struct = "mydev"', 'struct = "inode"'), 4, "[instance]", "struct 'inode' is the kernel's own"),
    (MOD + '[instance]\nstruct = "mydev"\n', 3, "[instance]", "the instance has no [[instance.entry]]"),
    (MOD + INSTANCE + '\n[[instance.entry]]\npath = "b"\ntype = "blob"\nfield = "b"\nmode = "0644"\n', 16, "instance entry #2 'b'",
     "per instance a blob is read-only"),
    (one(entry("dev0", "u8")) + INSTANCE, 8, "[instance]", "demo instance 'dev0' has the name of a module-wide entry"),
])
def test_instance_errors(text, line, where, fragment):
    p = only_error(text)
    assert (p.line, p.where, fragment in p.message) == (line, where, True), str(p)
    assert p.fix, str(p)


def test_instance_c_names_may_not_clash_with_the_modules():
    text = one(entry("mydev_count", "u8")) + "\n" + INSTANCE.replace('demo = ["dev0", "dev1"]\n', "")
    p = only_error(text)
    assert "needs the C name 'm_mydev_count', which is also used by entry #1 'mydev_count'" in str(p)
