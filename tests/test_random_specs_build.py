"""Valid specs drawn at random render to modules that build warning-free with
W=1 and sparse, and pass checkpatch --strict: the templates hold for odd
names, deep paths, every mode a type allows and arbitrary string bytes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import require_tools, run_cli, toml_str
from dbgscaffold.checkpatch import run_checkpatch
from dbgscaffold.kbuild import build
from dbgscaffold.kinds import TYPES
from dbgscaffold.lint import source_files
from dbgscaffold.spec import RESERVED_NAMES
from dbgscaffold.spec_model import Writes

pytestmark = pytest.mark.kbuild




# Paths unique by construction: directory components use [a-e][a-z0-9]*
# (no '_', '.', '-'), and each file's name starts with f<index>_, so neither
# paths nor their C names can collide, while '.' and '-' still appear.  Module
# names run to 40 characters and paths as deep and long as the 55-character C
# names allow; values are drawn at their extremes as often as in between.
dir_component = st.from_regex(r"[a-e][a-z0-9]{0,6}", fullmatch=True)
file_suffix = st.from_regex(r"[a-z.-]{0,24}", fullmatch=True)
# long values without letters: checkpatch's spelling check would flag random words in them
text_value = st.one_of(st.text(max_size=40), st.just(""), st.text(st.sampled_from(" 0123456789.,:;!?()[]{}<>+-*/=_#@$%^&|~'\"\\\n\t"),
                                                                  min_size=200, max_size=255))
NAMES = st.one_of(st.from_regex(r"[h-z][a-z0-9_]{0,11}", fullmatch=True), st.from_regex(r"[h-z][a-z0-9_]{30,39}", fullmatch=True)).filter(
    lambda n: n not in RESERVED_NAMES)
ROOTS = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,59}", fullmatch=True))
FORMATS = st.sampled_from(["%llu\n", "0x%016llx\n", "%#llx\n", "%llX", "v=%20llu\n", "%-8llu|\n"])
C_NAME_MAX = 55


def extreme_or(draw, lo: int, hi: int) -> int:
    return draw(st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi)))


@st.composite
def entry(draw, index: int, name: str) -> tuple[str, str]:
    """(path, the TOML lines of one entry) with a path whose C name fits."""
    dtype = TYPES[draw(st.sampled_from(sorted(TYPES)))]
    kind = dtype.kind.name
    budget = C_NAME_MAX - len(name) - 1
    leaf = f"g{index}" if kind == "dir" else f"f{index}_{draw(file_suffix)}"
    dirs = draw(st.lists(dir_component, max_size=6))
    while dirs and len("/".join([*dirs, leaf])) > budget:
        dirs.pop()
    path = "/".join([*dirs, leaf])[:budget]
    lines = [f'path = "{path}"', f'type = "{dtype.name}"']
    if dtype.kind.takes_mode:
        owner = 6 if dtype.writes is Writes.YES and draw(st.booleans()) else 4
        group = draw(st.sampled_from([0, 4]))
        lines.append(f'mode = "0{owner}{group}{group}"')
    if kind == "integer":
        lines.append(f"value = {extreme_or(draw, dtype.minimum, dtype.maximum)}")
    elif kind == "bool":
        lines.append(f"value = {draw(st.sampled_from(['true', 'false']))}")
    elif kind in ("blob", "custom"):
        lines.append(f"value = {toml_str(draw(text_value))}")
    elif kind == "string":
        value = draw(text_value)
        lines.append(f"value = {toml_str(value)}")
        lines.append(f"size = {len(value.encode()) + 1 + draw(st.integers(0, 100))}")
    elif kind == "u32_array":
        values = draw(st.lists(st.sampled_from([0, 2**32 - 1]) | st.integers(0, 2**32 - 1), max_size=12))
        lines.append(f"value = {values}")
        lines.append(f"length = {len(values) + draw(st.integers(1, 4))}")
    elif kind == "attribute":
        lines.append(f"format = {toml_str(draw(FORMATS))}")
        lines.append(f"value = {extreme_or(draw, 0, 2**64 - 1)}")
    elif kind == "regset32":
        words = draw(st.lists(st.integers(0, 0x3FFF), min_size=1, max_size=10, unique=True))
        regs = [f'{{ name = "R{n}_{draw(st.from_regex(r"[0-9_]{0,26}", fullmatch=True))}", offset = {4 * w:#x}, value = {extreme_or(draw, 0, 2**32 - 1)} }}'
                for n, w in enumerate(words)]
        lines.append("registers = [" + ", ".join(regs) + "]")
    elif kind == "symlink":
        lines.append('target = "TARGET"')  # set by specs() once every path is known
    return path, "\n".join(lines)


@st.composite
def specs(draw) -> str:
    name = draw(NAMES)
    description = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
    text = f'[module]\nname = "{name}"\ndescription = {toml_str(description)}\n'
    root = draw(ROOTS)
    if root is not None:
        text += f'root = "{root}"\n'
    drawn = [draw(entry(i, name)) for i in range(draw(st.integers(1, 10)))]
    targets = [path for path, lines in drawn if 'type = "symlink"' not in lines]
    targets += sorted({path.rsplit("/", 1)[0] for path in targets if "/" in path})
    body = ""
    for _path, lines in drawn:
        if 'target = "TARGET"' in lines:
            if not targets:
                continue
            lines = lines.replace("TARGET", draw(st.sampled_from(targets)))
        body += f"\n[[entry]]\n{lines}\n"
    budget = C_NAME_MAX - len(name) - 2 - 3  # <name>_<struct>_<i>N
    if budget >= 1 and draw(st.booleans()):
        struct = draw(st.from_regex(rf"[a-z][a-z0-9_]{{0,{min(budget, 24) - 1}}}", fullmatch=True).filter(lambda x: x not in RESERVED_NAMES))
        demo = draw(st.lists(st.from_regex(r"z[a-z0-9]{0,20}", fullmatch=True), max_size=3, unique=True))
        body += f'\n[instance]\nstruct = "{struct}"\ndemo = {demo}\n'
        for i, kind in enumerate(draw(st.lists(st.sampled_from(["u8", "x64", "atomic_t", "bool", "blob", "string", "attribute", "regset32", "seq"]), min_size=1, max_size=4))):
            body += f'\n[[instance.entry]]\npath = "i{i}"\ntype = "{kind}"\n'
            if kind != "seq" and (kind != "attribute" or draw(st.booleans())):
                body += f'field = "f{i}"\n'
            if kind == "regset32":
                body += 'registers = [{ name = "R", offset = 0x10, value = 1 }]\n'
            elif kind in ("blob", "string"):
                body += f"value = {toml_str(draw(text_value))}\n"
    return text + body


# Each example is a real build (~2 s); shrinking would rebuild hundreds of
# times, so a failure is reported as drawn, with its spec text.
@settings(
    max_examples=int(os.environ.get("DBGSCAFFOLD_BUILD_EXAMPLES", "6")),
    deadline=None,
    derandomize="DBGSCAFFOLD_BUILD_EXAMPLES" not in os.environ,  # CI: the same six every run
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=specs())
def test_random_valid_specs_build_clean_and_pass_checkpatch(text, kernel_headers, checkpatch_script):
    require_tools("make", "gcc", "sparse")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(text)
        result = run_cli("new", "--spec", str(spec), "-o", str(Path(tmp) / "m"))
        assert result.exit_code == 0, result.output + "\n" + text
        project = Path(tmp) / "m"
        files = [p.relative_to(project) for p in source_files(project)]
        findings = run_checkpatch(files, checkpatch_script, cwd=project).findings
        assert findings == [], "\n".join(map(str, findings)) + "\n" + text
        work = Path(tmp) / "build"
        shutil.copytree(project, work)
        built = build(work, kernel_headers["6.1"].build_dir, extra_warnings=True, sparse=True)
        assert built.ok and built.diagnostics == [], built.output + "\n" + text
