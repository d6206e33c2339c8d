"""The fault matrix (issue 12), row by row: what a user gets when a part is missing or
breaks: a message with a Fix line and the documented exit code, never a traceback."""

from __future__ import annotations

import os
import pickle
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require, run_cli
from dbgscaffold import sandbox
from dbgscaffold.vm import images


def path_without(tmp_path: Path, *prefixes: str) -> str:
    """A PATH holding every program of the real one but those named prefix*."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        for p in Path(d).glob("*") if Path(d).is_dir() else ():
            if not p.name.startswith(prefixes) and not (bin_ / p.name).exists():
                (bin_ / p.name).symlink_to(p)
    return str(bin_)


@pytest.mark.parametrize("command", [["test"], ["vm", "shell"]])
def test_no_qemu_is_exit_4_with_the_package_to_install(tmp_path, command):
    require(bool(images.scan_pairs().pairs), "a kernel image + headers pair (the command picks one before it needs QEMU)")
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "mydebug")).exit_code == 0
    env = {**os.environ, "PATH": path_without(tmp_path, "qemu-system-")}
    r = subprocess.run([sys.executable, "-m", "dbgscaffold", *command, str(tmp_path / "mydebug")], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
    assert "error: 'qemu-system-x86_64' is not installed" in r.stderr and "Fix: apt-get install qemu-system-x86" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def cli(args: list[str], env: dict | None = None, wrap: list[str] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m dbgscaffold ARGS` as a user runs it (wrapped, e.g. in bwrap, to change the machine under it)."""
    return subprocess.run([*wrap, sys.executable, "-m", "dbgscaffold", *args], env=env or dict(os.environ), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def clean(r: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit `code`, each of `words` in what it printed, and no traceback."""
    text = r.stdout + r.stderr
    assert r.returncode == code, (r.returncode, text[-3000:])
    assert "Traceback" not in text, text[-3000:]
    for w in words:
        assert w in text, (w, text[-3000:])


def fresh_project(tmp_path: Path, name: str = "faulty") -> Path:
    """A generated module never built before (so its build runs make)."""
    assert run_cli("new", name, "-o", str(tmp_path / name)).exit_code == 0
    c = tmp_path / name / f"{name}_debugfs.c"
    c.write_text(c.read_text() + f"\n/* {os.urandom(8).hex()} */\n")
    return tmp_path / name


def _pair(series: str) -> None:
    require(any(p.release.startswith(series + ".") for p in images.scan_pairs().pairs), f"a {series} kernel image + headers pair")


# A tool missing from PATH: (command, programs taken away, kernel, exit, what the message must say)
MISSING = {
    "make": (["test"], ("make",), "6.1", 4, ["'make' is not installed", "Fix: apt-get install"]),
    "gcc": (["test"], ("gcc",), "6.1", 4, ["kbuild runs 'gcc-12'", "Fix: apt-get install gcc-12"]),
    "lab make": (["lab", "check"], ("make",), "6.1", 4, ["'make' is not installed", "Fix: apt-get install"]),
    "lab qemu": (["lab", "check"], ("qemu-system-",), "6.1", 4, ["'qemu-system-x86_64' is not installed", "Fix: apt-get install qemu-system-x86"]),
    # strip only makes the module smaller for the UART: without it the unstripped .ko is sent
    "strip": (["test"], ("strip",), "6.1", 0, ["pass:"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("row", sorted(MISSING))
def test_a_missing_tool_is_named_with_its_package(tmp_path, row):
    command, gone, series, code, words = MISSING[row]
    _pair(series)
    if command[0] == "lab":
        assert run_cli("lab", "solution", "debugfs-basics", str(tmp_path / "sol")).exit_code == 0
        c = tmp_path / "sol" / "mydebug.c"
        c.write_text(c.read_text() + f"\n/* {os.urandom(8).hex()} */\n")
        target = tmp_path / "sol"
    else:
        target = fresh_project(tmp_path)
    env = {**os.environ, "PATH": path_without(tmp_path, *gone)}
    clean(cli([*command, str(target), "--kernel", series], env), code, *words)


def test_no_zstd_is_exit_4_for_the_zstd_compressed_6_12(tmp_path):
    """Debian's 6.12 image is zstd-compressed: its vmlinux (for PVH) cannot be extracted without zstd."""
    _pair("6.12")
    env = {**os.environ, "PATH": path_without(tmp_path, "zstd", "unzstd"), "DBGSCAFFOLD_CACHE": str(tmp_path / "cache")}
    clean(cli(["test", str(fresh_project(tmp_path)), "--kernel", "6.12"], env), 4,
          "'zstd' is not installed", "Fix: apt-get install zstd")


def bwrap_over(*mounts: str) -> list[str]:
    """A wrapper running the CLI on this machine, except for `mounts` (bwrap arguments)."""
    require(shutil.which("bwrap") is not None, "bwrap (bubblewrap)")
    return ["bwrap", "--dev-bind", "/", "/", *mounts, "--"]


@pytest.mark.slow
def test_no_busybox_is_exit_4_with_the_package(tmp_path):
    _pair("6.1")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    clean(cli(["test", str(fresh_project(tmp_path)), "--kernel", "6.1"], wrap=bwrap_over("--ro-bind", str(empty), "/bin/busybox")),
          4, "busybox", "Fix: apt-get install busybox-static")


def test_no_kernel_headers_is_exit_4_with_the_package(tmp_path):
    _pair("6.1")
    # /lib/modules/*/build point into /usr/src: hidden, they dangle, as after removing the headers package
    clean(cli(["test", str(fresh_project(tmp_path)), "--kernel", "6.1"], wrap=bwrap_over("--tmpfs", "/usr/src")), 4,
          "Fix: apt-get install linux-headers")


@pytest.mark.slow
def test_a_full_cache_disk_is_exit_4_naming_the_file_and_keeps_no_partial_entry(tmp_path):
    _pair("6.1")
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {**os.environ, "DBGSCAFFOLD_CACHE": str(cache / "c")}
    script = (f"{shlex.quote(sys.executable)} -m dbgscaffold test {shlex.quote(str(fresh_project(tmp_path)))} --kernel 6.1; "
              f"echo rc=$?; find {shlex.quote(str(cache))} -name '*.tmp' -o -name '*.tmp.*'")
    r = subprocess.run(bwrap_over("--size", str(1 << 20), "--tmpfs", str(cache)) + ["sh", "-c", script], env=env,
                       capture_output=True, text=True, timeout=300)
    assert "rc=4" in r.stdout, (r.stdout, r.stderr)
    assert r.stdout.strip().endswith("rc=4"), f"a partial entry was left: {r.stdout}"
    assert "no space left on the device" in r.stderr and "Fix: free space there, or set DBGSCAFFOLD_CACHE" in r.stderr, r.stderr
    assert str(cache / "c") in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_a_report_on_a_full_disk_is_exit_4(tmp_path):
    _pair("6.1")
    out = tmp_path / "out"
    out.mkdir()
    r = cli(["test", str(fresh_project(tmp_path)), "--kernel", "6.1", "--json", str(out / "report.json")],
            wrap=bwrap_over("--size", "4096", "--tmpfs", str(out)))
    clean(r, 4, f"{out / 'report.json'}: error: no space left on the device", "Fix: free space there")


def test_a_read_only_cache_is_exit_4_with_a_fix(tmp_path):
    _pair("6.1")
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    env = {**os.environ, "DBGSCAFFOLD_CACHE": str(cache)}
    r = cli(["test", str(fresh_project(tmp_path)), "--kernel", "6.1"], env, wrap=bwrap_over("--ro-bind", str(cache), str(cache)))
    clean(r, 4, "error: the file system is read-only", "set DBGSCAFFOLD_CACHE")


def test_a_cache_of_another_user_is_refused(tmp_path):
    require(os.geteuid() == 0, "root (to give the cache to another user)")
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    env = {**os.environ, "DBGSCAFFOLD_CACHE": str(cache)}
    project = tmp_path / "p"
    r = cli(["new", "p", "-o", str(project)], env)  # new only speeds up with the cache: it does without
    assert r.returncode == 0 and (project / "Kbuild").is_file(), r.stderr
    clean(cli(["test", str(project)], env), 4, f"{cache}: error: the cache belongs to nobody",
          "Fix: set DBGSCAFFOLD_CACHE to a directory of your own")


def test_the_cache_is_created_private(tmp_path, monkeypatch):
    from dbgscaffold import paths

    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "new" / "cache"))
    root = paths.cache_dir()
    assert root.is_dir() and stat.S_IMODE(root.stat().st_mode) == 0o700
    root.chmod(0o755)  # an older cache, made with the umask's mode
    assert stat.S_IMODE(paths.cache_dir().stat().st_mode) == 0o700


def test_only_files_no_one_else_could_write_are_trusted(tmp_path, monkeypatch):
    from dbgscaffold import paths

    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))
    sub = paths.cache_dir() / "kconfig-parsed"
    sub.mkdir()
    f = sub / "x.pickle"
    f.write_bytes(b"x")
    f.chmod(0o644)
    assert paths.trusted(f)
    f.chmod(0o666)
    assert not paths.trusted(f)
    f.chmod(0o644)
    sub.chmod(0o777)
    assert not paths.trusted(f), "a directory others may write into: they could have replaced the file"
    sub.chmod(0o755)
    elsewhere = tmp_path / "elsewhere.pickle"
    elsewhere.write_bytes(b"x")
    elsewhere.chmod(0o644)
    assert not paths.trusted(elsewhere), "outside the cache"
    if os.geteuid() == 0:
        os.chown(f, 65534, 65534)
        assert not paths.trusted(f), "another user's file"


def test_a_pickle_another_user_could_have_written_is_never_loaded(tmp_path, monkeypatch):
    """The parsed-Kconfig cache is pickle: a planted entry would run code when loaded. Planted
    over a real entry with a world-writable mode, it is ignored and the tree parsed again."""
    from dbgscaffold.kconfig import tree as kt

    monkeypatch.setenv("DBGSCAFFOLD_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src"
    (src / "arch" / "x86").mkdir(parents=True)
    (src / "scripts").mkdir()
    (src / "scripts" / "Kconfig.include").write_text("")
    (src / "Kconfig").write_text('mainmenu "t"\nconfig A\n\tbool "a"\n')
    (src / "arch" / "x86" / "Kconfig").write_text("")
    (src / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    first = kt.load_tree(src)
    entry = Path(first.load_info.cache_path)
    assert entry.is_file() and kt.load_tree(src).load_info.cached
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(entry, "rb") as f:
        header = pickle.load(f)  # the real header: the Kconfig files are unchanged, so the body is loaded if trusted
    entry.write_bytes(pickle.dumps(header) + pickle.dumps(Evil()))
    entry.chmod(0o666)
    again = kt.load_tree(src)
    assert not marker.exists(), "a pickle others could write was loaded"
    assert not again.load_info.cached


def _tmp_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name or p.name.startswith(".tmp-"))


# Each phase of a cold `test` and what shows it has begun (files in the cache, a QEMU).
PHASES = {
    "vmlinux extraction": lambda cache: any((cache / "vmlinux").glob("*.tmp")),
    "build": lambda cache: any((cache / "builds").glob("*/BUILDING")),
    "boot": None,  # a QEMU of this cache runs
    "snapshot save": lambda cache: any((cache / "snapshots").glob("*.tmp")),
    "checks": lambda cache: any((cache / "snapshots").glob("*.json")),
}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_in_every_phase_leaves_no_qemu_and_nothing_a_later_run_trusts(tmp_path, sig):
    """^C or a cancelled CI job (SIGTERM) while the cold cache is filled, the module built,
    the guest booted, its snapshot saved and the checks run: exit 130/143, no QEMU left,
    no temporary file left, and the next run passes on what the interrupted ones kept."""
    from conftest import qemu_processes

    _pair("6.1")
    cache = tmp_path / "cache"
    env = {**os.environ, "DBGSCAFFOLD_CACHE": str(cache)}
    project = fresh_project(tmp_path)
    for phase, started in PHASES.items():
        if phase == "vmlinux extraction":
            shutil.rmtree(cache / "vmlinux", ignore_errors=True)
        shutil.rmtree(cache / "snapshots", ignore_errors=True)  # the boot saves one again
        c = project / f"{project.name}_debugfs.c"
        c.write_text(c.read_text() + f"/* {phase} */\n")  # and builds again
        proc = subprocess.Popen([sys.executable, "-m", "dbgscaffold", "test", str(project), "--kernel", "6.1"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if started(cache) if started is not None else qemu_processes(str(cache)):
                break
            time.sleep(0.002)
        assert proc.poll() is None, f"{phase}: the run ended before the phase began"
        if phase == "checks":
            time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, (phase, proc.returncode, err[-2000:])
        assert "Traceback" not in out + err, err[-3000:]
        deadline = time.monotonic() + 10
        while qemu_processes(str(cache)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not qemu_processes(str(cache)), f"{phase}: QEMU outlived the command"
        assert not _tmp_files(cache), (phase, _tmp_files(cache))
        for tree in (cache / "builds").glob("*/"):  # a build the signal cut short is never marked whole
            assert not ((tree / "BUILT").exists() and (tree / "BUILDING").exists()), phase
    clean(cli(["test", str(project), "--kernel", "6.1"], env), 0, "pass:")


@pytest.mark.parametrize("how", ["timeout", "signal"])
def test_a_killed_build_leaves_no_compiler_probe_directory(tmp_path, how):
    """kbuild probes the compiler in M=/.tmp_<pid>, removed by a shell EXIT trap a SIGKILL
    skips: the signal phase of the test above once found one in a cached build tree."""
    import threading

    from dbgscaffold import kbuild, procs

    kdir, project = tmp_path / "kdir", tmp_path / "project"
    kdir.mkdir()
    project.mkdir()
    # what scripts/Makefile.compiler's try-run does, then a build that takes its time
    (kdir / "Makefile").write_text("modules:\n\tmkdir -p $(M)/.tmp_$$$$ && touch $(M)/.tmp_$$$$/tmp && sleep 60\n")
    if how == "timeout":
        with pytest.raises(subprocess.TimeoutExpired):
            kbuild.build(project, kdir, timeout=1)
    else:
        results: list = []
        worker = threading.Thread(target=lambda: results.append(kbuild.build(project, kdir)))
        worker.start()
        deadline = time.monotonic() + 10
        while not any(project.glob(".tmp_*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert any(project.glob(".tmp_*")), "the stand-in probe never ran"
        procs.kill_tracked()
        worker.join(timeout=10)
        assert results and results[0].returncode < 0
    assert not list(project.iterdir()), list(project.iterdir())


@pytest.mark.slow
def test_two_runs_share_a_cold_cache(tmp_path):
    _pair("6.1")
    env = {**os.environ, "DBGSCAFFOLD_CACHE": str(tmp_path / "cache")}
    a, b = fresh_project(tmp_path, "alpha"), fresh_project(tmp_path, "beta")
    procs = [subprocess.Popen([sys.executable, "-m", "dbgscaffold", "test", str(p), "--kernel", "6.1"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in (a, b)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, (out[-2000:], err[-2000:])


@pytest.mark.slow
def test_a_damaged_entry_of_each_cache_kind_is_discarded_and_rebuilt(tmp_path):
    """vmlinux, initramfs, build tree, snapshot and parsed Kconfig tree: each overwritten with
    garbage (as a crash of the disk, or a hand, might leave it); the next run passes and the
    entry is whole again."""
    from dbgscaffold.kconfig import tree as kt

    _pair("6.1")
    cache = tmp_path / "cache"
    env = {**os.environ, "DBGSCAFFOLD_CACHE": str(cache)}
    project = fresh_project(tmp_path)
    clean(cli(["test", str(project), "--kernel", "6.1"], env), 0, "pass:")
    clean(cli(["test", str(project), "--kernel", "6.1"], env), 0, "restore")  # the snapshot is there and used
    damaged = {
        "vmlinux": next((cache / "vmlinux").glob("*.elf")),
        "initramfs": next((cache / "initramfs").glob("*.cpio")),
        "build tree": next((cache / "builds").glob(f"*/src/{project.name}.ko")),
    }
    for path in damaged.values():
        path.write_bytes(b"\0garbage" * 64)
    clean(cli(["test", str(project), "--kernel", "6.1"], env), 0, "pass:")
    for kind, path in damaged.items():
        assert path.is_file() and not path.read_bytes().startswith(b"\0garbage"), f"{kind}: the damaged entry is still there"
    # the snapshot of the kernel and initramfs now in use
    state = max((cache / "snapshots").glob("*.state"), key=lambda p: p.stat().st_mtime)
    state.write_bytes(b"\0garbage" * 64)
    clean(cli(["test", str(project), "--kernel", "6.1"], env), 0, "pass:", "the snapshot did not load", "discarded it")
    assert not state.read_bytes().startswith(b"\0garbage"), "the damaged snapshot was not replaced"

    monkey_env = {**os.environ, "DBGSCAFFOLD_CACHE": str(cache)}
    code = ("import sys; from dbgscaffold.kconfig import tree as kt; t = kt.find_source_tree('6.1'); k = kt.load_tree(t); "
            "print(k.load_info.cached, k.load_info.cache_path)")
    try:
        kt.find_source_tree("6.1")
    except Exception as exc:  # noqa: BLE001 - no 6.1 source tree here: the Kconfig row needs one
        require(False, f"Debian's linux-source-6.1 ({exc})")
    first = subprocess.run([sys.executable, "-c", code], env=monkey_env, capture_output=True, text=True, timeout=300)
    entry = Path(first.stdout.split()[-1])
    entry.write_bytes(b"\0garbage")
    again = subprocess.run([sys.executable, "-c", code], env=monkey_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.startswith("False"), again.stderr[-2000:]
    third = subprocess.run([sys.executable, "-c", code], env=monkey_env, capture_output=True, text=True, timeout=300)
    assert third.stdout.startswith("True"), "the damaged Kconfig entry was not replaced"


def test_no_bubblewrap_lab_grade_refuses_with_exit_4_and_doctor_says_why(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "alice")).exit_code == 0
    env = {**os.environ, "PATH": path_without(tmp_path, "bwrap")}
    out = tmp_path / "g.csv"
    clean(cli(["lab", "grade", str(subs), "--lab", "debugfs-basics", "--out", str(out)], env), 4,
          "lab grade builds untrusted code only in a sandbox", "bubblewrap (bwrap) is not installed",
          "Fix: apt-get install bubblewrap", "--no-sandbox")
    assert not out.exists(), "nothing graded, nothing written"
    clean(cli(["test", str(fresh_project(tmp_path)), "--untrusted"], env), 4, "test --untrusted builds untrusted code only in a sandbox")
    r = cli(["doctor"], env)
    assert "sandbox: bubblewrap (bwrap) is not installed" in r.stdout and "apt-get install bubblewrap" in r.stdout, r.stdout


@pytest.mark.slow
def test_no_sandbox_grades_where_bubblewrap_cannot_work_still_with_the_labs_kbuild(tmp_path):
    _pair("6.1")
    subs = tmp_path / "subs"
    subs.mkdir()
    assert run_cli("lab", "solution", "debugfs-basics", str(subs / "alice")).exit_code == 0
    marker = tmp_path / "pwned"
    (subs / "alice" / "Kbuild").write_text(f"$(shell touch {marker})\nobj-m := mydebug.o\n")
    env = {**os.environ, "PATH": path_without(tmp_path, "bwrap")}
    out = tmp_path / "g.csv"
    clean(cli(["lab", "grade", str(subs), "--lab", "debugfs-basics", "--kernel", "6.1", "--out", str(out), "--no-sandbox"], env),
          0, "alice: 12/12")
    assert not marker.exists(), "the submission's own Kbuild ran"


def test_new_onto_a_full_disk_is_exit_4_and_writes_nothing(tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    script = f"{shlex.quote(sys.executable)} -m dbgscaffold new x -o {out}/x; echo rc=$?; ls -A {out}"
    r = subprocess.run(bwrap_over("--size", "8192", "--tmpfs", str(out)) + ["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "rc=4", (r.stdout, r.stderr)  # and nothing in the directory
    assert "cannot write the project: No space left on device. Fix: free space there" in r.stderr and "Traceback" not in r.stderr


def test_reports_are_written_whole_through_links_and_into_devices(tmp_path):
    from dbgscaffold.paths import atomic_write

    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write(link, b"new")
    assert link.is_symlink() and target.read_text() == "new", "the link's target is replaced, the link stays"
    atomic_write(Path("/dev/null"), b"into a device")  # --json /dev/stdout and fifos are written in place
    assert Path("/dev/null").is_char_device()
    fresh = tmp_path / "d" / "r.json"
    atomic_write(fresh, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.read_bytes() == b"x" and stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    assert not [p for p in fresh.parent.iterdir() if p.name != "r.json"], "no temporary file left"


def _processes(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_sandboxed_build_stops_it_at_once(tmp_path, sig):
    """The build runs in a thread; ^C arrives in the main one: the sandbox (and the make
    inside it) must stop now, not when the build would have ended."""
    _pair("6.1")
    require(not sandbox.available(), f"a working sandbox ({sandbox.available()})")
    project = fresh_project(tmp_path)
    tag = f"sleep 77.{os.getpid()}"
    kbuild = project / "Kbuild"
    kbuild.write_text(f"$(shell {tag})\n" + kbuild.read_text())
    proc = subprocess.Popen([sys.executable, "-m", "dbgscaffold", "test", str(project), "--kernel", "6.1", "--untrusted"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _processes(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes(tag), "the sandboxed build never started"
    t0 = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig and time.monotonic() - t0 < 15, (proc.returncode, err[-2000:])
    assert "Traceback" not in err
    time.sleep(0.5)
    assert not _processes(tag), "the sandbox outlived the command"


def test_the_reports_are_written_whatever_stops_the_run(tmp_path):
    """--junit and --json on every outcome (issue 15): a missing tool (exit 4) and an unknown
    kernel (exit 2) become one error test case each, with the message, not a missing file."""
    import json
    import xml.etree.ElementTree as ET

    require(bool(images.scan_pairs().pairs), "a kernel image + headers pair")
    assert run_cli("new", "mydebug", "-o", str(tmp_path / "mydebug")).exit_code == 0
    junit, report = tmp_path / "j.xml", tmp_path / "r.json"
    env = {**os.environ, "PATH": path_without(tmp_path, "qemu-system-")}
    r = cli(["test", str(tmp_path / "mydebug"), "--kernel", "6.1", "--junit", str(junit), "--json", str(report)], env=env)
    clean(r, 4, "'qemu-system-x86_64' is not installed")
    (run,) = json.loads(report.read_text())["runs"]
    assert run["exit_code"] == 4 and run["verdict"].startswith("not run: ") and "qemu-system-x86_64" in run["verdict"], run
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.get("name") == "setup" and "." not in case.get("classname") and case.get("classname").startswith("mydebug on 6_1_")
    assert "qemu-system-x86_64" in case.find("error").get("message")

    r = cli(["test", str(tmp_path / "mydebug"), "--kernel", "9.99", "--junit", str(junit), "--json", str(report)])
    assert r.returncode in (2, 4) and "Traceback" not in r.stderr, r.stderr
    (run,) = json.loads(report.read_text())["runs"]
    assert run["exit_code"] == r.returncode and run["kernel"] == "", run
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.get("classname") == "mydebug (no kernel)" and case.find("error") is not None
