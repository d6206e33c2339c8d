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
from dbgscaffold.debugfs_types import TYPES, Kind, Writes
from dbgscaffold.kbuild import build
from dbgscaffold.lint import source_files
from dbgscaffold.spec import RESERVED_NAMES

pytestmark = pytest.mark.kbuild




# Paths unique by construction: directory components use [a-e][a-z0-9]*
# (no '_', '.', '-'), and each file's name starts with f<index>_, so neither
# paths nor their C names can collide, while '.' and '-' still appear.
dir_component = st.from_regex(r"[a-e][a-z0-9]{0,6}", fullmatch=True)
file_suffix = st.from_regex(r"[a-z.-]{0,6}", fullmatch=True)
text_value = st.text(max_size=40)
NAMES = st.from_regex(r"[h-z][a-z0-9_]{0,11}", fullmatch=True).filter(lambda n: n not in RESERVED_NAMES)


@st.composite
def entry(draw, index: int) -> str:
    dtype = TYPES[draw(st.sampled_from(sorted(TYPES)))]
    dirs = draw(st.lists(dir_component, max_size=3))
    leaf = f"g{index}" if dtype.kind is Kind.DIR else f"f{index}_{draw(file_suffix)}"
    lines = [f'path = "{"/".join([*dirs, leaf])}"', f'type = "{dtype.name}"']
    if dtype.kind is not Kind.DIR:
        owner = 6 if dtype.writes is Writes.YES and draw(st.booleans()) else 4
        group = draw(st.sampled_from([0, 4]))
        lines.append(f'mode = "0{owner}{group}{group}"')
    if dtype.kind is Kind.INTEGER:
        lines.append(f"value = {draw(st.integers(dtype.minimum, dtype.maximum))}")
    elif dtype.kind is Kind.BOOL:
        lines.append(f"value = {draw(st.sampled_from(['true', 'false']))}")
    elif dtype.kind in (Kind.BLOB, Kind.CUSTOM):
        lines.append(f"value = {toml_str(draw(text_value))}")
    elif dtype.kind is Kind.STRING:
        value = draw(text_value)
        lines.append(f"value = {toml_str(value)}")
        lines.append(f"size = {len(value.encode()) + 1 + draw(st.integers(0, 100))}")
    elif dtype.kind is Kind.U32_ARRAY:
        values = draw(st.lists(st.integers(0, 2**32 - 1), max_size=12))
        lines.append(f"value = {values}")
        lines.append(f"length = {len(values) + draw(st.integers(1, 4))}")
    return "\n".join(lines)


@st.composite
def specs(draw) -> str:
    name = draw(NAMES)
    description = draw(st.text(max_size=30).filter(str.isprintable))
    text = f'[module]\nname = "{name}"\ndescription = {toml_str(description)}\n'
    count = draw(st.integers(1, 10))
    return text + "".join(f"\n[[entry]]\n{draw(entry(i))}\n" for i in range(count))


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
