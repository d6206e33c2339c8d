"""The runner: one request in (a project to build, its checks, a kernel), one TestRun out.

Above the VM core (vm/), kbuild and the spec; below the labs and the CLI.

- `model`: Status, CheckResult, BuildFailure, TestRun: what crosses the boundary.
- `build`: kbuild a project's modules for one kernel, in load order.
- `checks`: the guest's check script (spec-derived, discovered, the user's tests/*.sh).
- `project`: what a directory is (generated or hand-written) and its payload.
- `execute`: RunRequest, RunOptions and run(): VMs side by side, snapshots, batches.
- `judge`: a run's KTAP, console and taint -> its verdict (pure).
- `report`: TestRun -> table, JUnit XML, JSON.
- `shell`: the guest of `dbgscaffold vm shell` for a module project.
"""
