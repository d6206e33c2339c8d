"""The one version key of every JSON document dbgscaffold writes: `"schema":
"dbgscaffold/<document>/v<N>"` (docs/json.md lists them). N changes only when a reader
of the old document would misread the new one."""

from __future__ import annotations

TEST_REPORT = "dbgscaffold/test/v1"  # test --json
CHECK_CONFIG = "dbgscaffold/check-config/v1"  # check-config --json
LAB_GRADES = "dbgscaffold/lab-grades/v1"  # lab grade (the .json beside the CSV), lab merge
PROJECT_MANIFEST = "dbgscaffold/manifest/v1"  # a generated project's manifest (what regen may overwrite)
KERNELS = "dbgscaffold/kernels/v1"  # kernels --json
DOCTOR = "dbgscaffold/doctor/v1"  # doctor --json
LINT = "dbgscaffold/lint/v1"  # lint --json
LAB_LIST = "dbgscaffold/lab-list/v1"  # lab list --json
LAB_CHECK = "dbgscaffold/lab-check/v1"  # lab check --json


def dumps(schema: str, fields: dict) -> str:
    """A document as written: its schema key first, then `fields`, indented."""
    import json

    return json.dumps({"schema": schema, **fields}, indent=2) + "\n"
