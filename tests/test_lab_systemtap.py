"""The systemtap lab kind: stap on the host for the lab kernel, staprun in the guest.

Fast tests cover the pure parts (feature probes, the symbol map, ldd parsing,
the payload script) and the patch as data (it applies to Debian's runtime).
The slow ones compile the lab's solution scripts for 6.1 and for 6.12 with
Debian bookworm's SystemTap 4.8 and the patched runtime, run them in the VM
with staprun (baked into the agent initramfs) through `lab selfcheck`'s path
and require every visible and hidden check to pass: "hello systemtap!" read from staprun's output, 3 and 5 sync(2)
calls counted by a kprobe.function probe, vfs_write()'s argument and return
value (1234, 777, -28 for /dev/full). A wrong script fails its checks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import KERNEL_SERIES, require, require_tools
from dbgscaffold.errors import EXIT_BUILD, EXIT_ENVIRONMENT, EnvironmentProblem
from dbgscaffold.lab import systemtap as st
from dbgscaffold.vm import initramfs

LAB = Path(__file__).resolve().parent.parent / "module_templates" / "labs" / "systemtap"


# ---------------------------------------------------------------- pure


def test_stap_version_is_read_from_stap_V():
    text = "Systemtap translator/driver (version 4.8/0.188, Debian version 4.8-2)\nCopyright ..."
    assert st.parse_stap_version(text) == "4.8"
    with pytest.raises(ValueError):
        st.parse_stap_version("bash: stap: command not found")


def test_features_are_decided_by_the_headers_text():
    data = st.load_compat()
    old = {  # 6.1.1xx: only the task_work backport
        "include/linux/task_work.h": "struct callback_head *task_work_cancel_func(struct task_struct *, task_work_func_t);\n"
                                     "bool task_work_cancel(struct task_struct *task, struct callback_head *cb);",
        "include/linux/string.h": "size_t strlcpy(char *, const char *, size_t);",
        "include/linux/mm.h": "long get_user_pages_remote(struct mm_struct *mm, unsigned long start, unsigned long nr_pages,\n"
                              "\t\tunsigned int gup_flags, struct page **pages, struct vm_area_struct **vmas, int *locked);",
        "include/linux/kallsyms.h": "int kallsyms_on_each_symbol(int (*fn)(void *, const char *, struct module *, unsigned long), void *data);",
        "include/linux/module.h": "struct module_layout {",
        "include/linux/sched/signal.h": "#define do_each_thread(g, t) \\",
        "include/linux/workqueue.h": "#define flush_scheduled_work()\t\\\n({\t\\\n\tif (0)\t\\\n\t\t__warn_flushing_systemwide_wq();\t\\\n",
        "include/linux/uprobes.h": "extern void uprobe_unregister(struct inode *inode, loff_t offset, struct uprobe_consumer *uc);",
    }
    assert st.probe_features(data.features, old.get) == ("STAPCONF_DBGS_TASK_WORK_CANCEL_FUNC",)
    new = dict(old)
    new.update({
        "include/linux/string.h": "ssize_t strscpy(char *, const char *, size_t);",
        "include/linux/mm.h": "long get_user_pages_remote(struct mm_struct *mm,\n\t\tunsigned long start, unsigned long nr_pages,\n"
                              "\t\tunsigned int gup_flags, struct page **pages,\n\t\tint *locked);",
        "include/linux/kallsyms.h": "int kallsyms_on_each_symbol(int (*fn)(void *, const char *, unsigned long),\n\t\t\t    void *data);",
        "include/linux/module.h": "struct module_memory {",
        "include/linux/sched/signal.h": "#define for_each_process_thread(p, t)",
        "include/linux/workqueue.h": "#define flush_scheduled_work()\t\t\\\n({\t\t\t\\\n\t__warn_flushing_systemwide_wq();\t\\\n",
        "include/linux/uprobes.h": "extern void uprobe_unregister_nosync(struct uprobe *uprobe, struct uprobe_consumer *uc);",
    })
    assert set(st.probe_features(data.features, new.get)) == {f.macro for f in data.features}
    assert st.probe_features(data.features, lambda rel: None) == ()  # no header: nothing assumed
    header = st.compat_header(["B", "A"], "6.12.0")
    assert header.splitlines()[1:] == ["#define A 1", "#define B 1"] and "6.12.0" in header


def test_every_feature_macro_is_used_by_the_patch():
    data = st.load_compat()
    patch = (st.patches_dir() / data.patches["4.8"]).read_text()
    for f in data.features:
        assert f.macro in patch, f.macro
    assert '#include "dbgscaffold_compat.h"' in patch


def test_the_symbol_map_names_the_probed_functions():
    script = (LAB / "solution" / "write.stp").read_text() + '\n/* kprobe.function("not_this") */\nprobe kprobe.function("ksys_sync") {}\n'
    assert st.kprobe_functions(script) == ["vfs_write", "ksys_sync"]
    lines = st.symbol_map(["vfs_write"]).splitlines()
    assert [x.split()[2] for x in lines] == ["_text", "_stext", "vfs_write", "_etext"]
    assert all(x.split()[1] == "T" and len(x.split()[0]) == 16 for x in lines)


def test_ldd_output_gives_libraries_and_loader():
    text = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x00007f)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f)
"""
    libs, loader = st.parse_ldd(text)
    assert [p.name for p in libs] == ["libelf.so.1", "libc.so.6"] and loader == Path("/lib64/ld-linux-x86-64.so.2")
    with pytest.raises(EnvironmentProblem, match="systemtap-runtime"):
        st.parse_ldd("\tlibnss3.so => not found\n")


def test_stap_errors_keep_what_went_wrong():
    out = """Pass 1: parsed user script
semantic error: while resolving probe point: identifier 'kprobe' at x.stp:8:7
        source: probe kprobe.function("nope")
                      ^
cc1: all warnings being treated as errors
Pass 2: analysis failed.  [man error::pass2]
"""
    lines = st.stap_errors(out)
    assert lines[0].startswith("semantic error") and any("Pass 2" in x for x in lines)
    assert not any("all warnings" in x for x in lines)


def test_staprun_lives_in_the_agent_initramfs_not_the_payload(tmp_path):
    from dbgscaffold.vm.agent import PAYLOAD_ROOT

    assert not st.GUEST_ROOT.startswith(PAYLOAD_ROOT + "/")
    ko = tmp_path / "hello.ko"
    ko.write_bytes(b"\x7fELF")
    check = tmp_path / "01-hello.sh"
    check.write_text("true\n")
    files = st.lab_payload_files([ko], [("01-hello.sh", check)], "6.1")
    assert sorted(f.dest for f in files) == ["/run/payload/checks/01-hello.sh", "/run/payload/ko/hello.ko", "/run/payload/run.sh"]
    assert f"STAP_ROOT={st.GUEST_ROOT}" in files[-1].data.decode()


def test_payload_script_runs_each_check_with_staprun_ready():
    script = st.payload_script([("01-hello.sh", "/run/payload/checks/01-hello.sh")], "6.12")
    assert script.startswith("# Generated") and ". /checks/ktap.sh" in script
    assert "ln -sf \"$STAP_ROOT/lib/ld-linux-x86-64.so.2\" /lib64/ld-linux-x86-64.so.2" in script
    assert 'SYSTEMTAP_STAPIO="$STAP_ROOT/bin/stapio"' in script and 'SYSTEMTAP_STAPRUN="$STAPRUN"' in script
    assert "_dbgs_res '1..1'" in script and "run_user_check 1 01-hello.sh /run/payload/checks/01-hello.sh" in script
    assert "SERIES=6.12" in script and "STAP_KO_DIR=/run/payload/ko" in script


def test_the_lab_manifest_lists_its_scripts():
    from dbgscaffold.lab import manifest

    lab = manifest.load_lab(LAB)
    assert lab.kind == "systemtap" and st.lab_scripts(lab) == ["hello.stp", "count.stp", "write.stp"]
    assert all((LAB / "solution" / s).is_file() for s in st.lab_scripts(lab))
    planned = st.plan(lab, hidden=True)
    assert [c.task for c in planned] == [1, 1, 2, 2, 3, 3] and sum(c.hidden for c in planned) == 3
    assert all(c.guest == f"{st.GUEST_CHECK_DIR}/{c.file}" for c in planned)


# ---------------------------------------------------------------- edges without a VM


def test_a_missing_stap_names_the_package(monkeypatch):
    monkeypatch.setattr(st.shutil, "which", lambda name: None)
    with pytest.raises(EnvironmentProblem) as info:
        st.find_stap()
    assert info.value.exit_code == EXIT_ENVIRONMENT and "apt-get install systemtap" in str(info.value)


def _require_stap() -> None:
    require_tools("stap", "staprun", "patch", "ldd")
    require(st.STOCK_RUNTIME.is_dir(), f"SystemTap's runtime at {st.STOCK_RUNTIME} (apt-get install systemtap)")


def test_the_patch_applies_to_debians_runtime_and_is_cached(tmp_path, kernel_headers):
    _require_stap()
    version = st.stap_version()
    require(version in st.load_compat().patches, f"a runtime patch for stap {version}")
    for series, headers in kernel_headers.items():
        release = headers.release
        one = st.prepared_runtime(version, release, cache=tmp_path)
        assert one != st.STOCK_RUNTIME and (one / st.COMPAT_HEADER).is_file()
        assert st.prepared_runtime(version, release, cache=tmp_path) == one  # cached
        macros = st.kernel_features(release)
        assert "STAPCONF_DBGS_TASK_WORK_CANCEL_FUNC" in macros, f"{release}: the task_work backport"
        if series == "6.12":
            assert {"STAPCONF_DBGS_NO_STRLCPY", "STAPCONF_DBGS_MODULE_MEMORY"} <= set(macros)
        text = (one / st.COMPAT_HEADER).read_text()
        assert all(f"#define {m} 1" in text for m in macros)


def test_a_script_error_is_a_build_failure_with_stap_message(tmp_path, kernel_headers):
    _require_stap()
    rel = kernel_headers["6.1"].release
    with pytest.raises(st.StapFailed) as info:  # pass 1: fast, no kbuild
        st.compile_script('probe begin { log("no closing brace") ', rel, "broken", tmp_path)
    assert info.value.exit_code == EXIT_BUILD and "parse error" in str(info.value)
    with pytest.raises(st.StapFailed, match="wildcard needs the kernel's symbol table"):
        st.compile_script('probe kprobe.function("vfs_*") { }', rel, "wild", tmp_path)


# ---------------------------------------------------------------- in the VM (slow)


def _pair(series: str):
    from dbgscaffold.vm import images

    require_tools("qemu-system-x86_64", "make", "strip")
    _require_stap()
    require(initramfs.BUSYBOX.is_file(), "static busybox at /bin/busybox (busybox-static)")
    pairs = [p for p in images.scan_pairs().pairs if p.release.startswith(series + ".")]
    require(bool(pairs), f"a {series} kernel image + headers pair")
    if series == "6.12":
        require(shutil.which("zstd") is not None, "'zstd' on PATH (6.12 is zstd-compressed)")
    return pairs[0]


def _run(project: Path, pair, tmp_path: Path):
    """One project through the framework's path (engine.run_projects, as `lab check`):
    staprun in the agent initramfs, the snapshot on."""
    from dbgscaffold.lab import manifest
    from dbgscaffold.lab.engine import run_projects

    lab = manifest.load_lab(LAB)
    return run_projects(lab, [("student", project)], pair, hidden=True, jobs=1, keep_logs=tmp_path / "logs")[0]


@pytest.mark.slow
@pytest.mark.parametrize("series", KERNEL_SERIES)
def test_selfcheck_passes_on_each_kernel(series):
    """`dbgscaffold lab selfcheck systemtap`: the solution passes all 6 checks, the
    skeleton fails every task's checks. stap's cache makes the second run's compile instant."""
    import time

    from dbgscaffold.lab import manifest
    from dbgscaffold.lab.selfcheck import selfcheck_lab

    pair = _pair(series)
    lab = manifest.load_lab(LAB)
    t0 = time.monotonic()
    result = selfcheck_lab(lab, pair, jobs=1)
    assert not result.defects, "\n".join(result.defects)
    assert result.solution.startswith("10/10"), result.solution
    print(f"\n{pair.release}: selfcheck {time.monotonic() - t0:.1f} s; solution {result.solution}; skeleton {result.skeleton}")


@pytest.mark.slow
def test_wrong_scripts_fail_their_checks(tmp_path):
    pair = _pair("6.1")
    project = tmp_path / "student"
    project.mkdir()
    # hello never calls exit(); count counts every sync twice; write prints the wrong argument
    (project / "hello.stp").write_text('probe begin { log("hello systemtap!") }\n')
    (project / "count.stp").write_text('global n\nprobe kprobe.function("__x64_sys_sync") { n += 2 }\nprobe end { printf("sync calls: %d\\n", n) }\n')
    (project / "write.stp").write_text('probe kprobe.function("vfs_write") { if (execname() == "dd") printf("dd write %d\\n", ulong_arg(2)) }\n'
                                       'probe kprobe.function("vfs_write").return { if (execname() == "dd") printf("dd wrote %d\\n", returnval()) }\n')
    outcome = _run(project, pair, tmp_path)
    statuses = {c.name: c.status for c in outcome.run.checks}
    assert all(s == "fail" for s in statuses.values()), statuses
    hello = next(c for c in outcome.run.checks if c.name.endswith("hello.stp prints \"hello systemtap!\" and ends by itself"))
    assert any("status" in d for d in hello.diagnostics), hello.diagnostics


@pytest.mark.slow
def test_grade_compiles_the_scripts_in_the_sandbox(tmp_path):
    """`lab grade` of a systemtap submission folder: stap translates and builds each
    student's script inside the sandbox (its HOME a private tmpfs: the host's stap cache
    gets nothing), and the solution still scores 10/10."""
    import csv

    from conftest import run_cli
    from dbgscaffold import sandbox

    _pair("6.1")
    require(not sandbox.available(), f"a working sandbox ({sandbox.available()})")
    subs = tmp_path / "subs"
    subs.mkdir()
    assert run_cli("lab", "solution", "systemtap", str(subs / "alice")).exit_code == 0
    # a comment makes the scripts unlike any stap has cached
    for stp in (subs / "alice").glob("*.stp"):
        stp.write_text(stp.read_text() + f"# {tmp_path.name}\n")
    stap_cache = Path.home() / ".systemtap" / "cache"
    before = sorted(stap_cache.rglob("*")) if stap_cache.is_dir() else []
    out = tmp_path / "g.csv"
    r = run_cli("lab", "grade", str(subs), "--lab", "systemtap", "--kernel", "6.1", "--out", str(out), "-j", "1")
    assert r.exception is None and r.exit_code == 0, r.output
    row = next(csv.DictReader(out.open()))
    assert (row["student"], row["total"], row["exit"]) == ("alice", "10", "0"), row
    after = sorted(stap_cache.rglob("*")) if stap_cache.is_dir() else []
    assert after == before, "stap ran outside the sandbox (it wrote the host's stap cache)"
