"""One QEMU running the guest agent (agent.py): boot or restore it, then run payloads.

    vm = AgentVM(machine, store)        # store=None: always boot fresh
    vm.start(timeout)                    # restore the snapshot, or boot (and save one)
    vm.warm_up(payload, timeout)         # optional: a restored guest's first payload, results unread
    r = vm.run(payload, timeout, on_line)  # -> PayloadRun (a qemu.RunResult + the agent's Done)
    vm.close()                           # always: QEMU never outlives the VM object

The results UART is a unix socket QEMU serves (wait=on: the guest starts only
once we are connected, so no line is lost); a thread turns it into lines.
A restored guest that answers nothing is not trusted: the snapshot is
discarded and the payload re-run on a fresh boot.
"""

from __future__ import annotations

import atexit
import queue
import shlex
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import EnvironmentProblem
from ..procs import kill_group
from .agent import PAYLOAD_BEGUN, READY, Done, new_token, parse_done, payload_message, untag
from .crash import CHECK_BEGIN, decode_taint, what_killed
from .initramfs import BOOT_MARKER
from .qemu import AGENT_PORT, CONSOLE, Machine, Reader, RunResult, argv, spawn
from .qmp import Qmp, QmpError
from .snapshot import SnapshotStore, qemu_version, snapshot_key

# Every AgentVM not yet closed: at exit (^C, SIGTERM, an error) each is closed, even one a
# daemon thread was still saving a snapshot with, so no QEMU and no half-written state stay.
_LIVE: weakref.WeakSet[AgentVM] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for vm in list(_LIVE):
        vm.exiting = True  # a worker thread seeing its guest end now must not blame the snapshot
        vm.close()


RESTORE_ALIVE_SECONDS = 15.0  # a restored guest that says nothing for this long is broken
FORGED_KEPT = 10  # results-port lines without the token kept as evidence
CONSOLE_KEPT = 1 << 20  # of a payload's console, the first and the last MiB (a printk flood can be 100s of MB)
LINE_MAX = 64 << 10  # a results-port "line" longer than this is cut (a module can write one without end)
_EOF = None


@dataclass(frozen=True)
class BootInfo:
    kind: str  # "snapshot" (restored) or "fresh"
    seconds: float  # spawn -> the guest is ready (fresh) or running again (restored)
    note: str  # what happened to the snapshot, for the report


@dataclass(frozen=True)
class PayloadRun:
    result: RunResult  # for runner.judge(): this payload's console slice and KTAP
    done: Done | None  # None: the guest died, hung or timed out before finishing
    boot: BootInfo


class _Lines:
    """The results socket as lines, with arrival times; None marks EOF."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            while chunk := self.sock.recv(65536):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                if len(buf) > LINE_MAX:
                    lines.append(buf[:LINE_MAX])
                    buf = b""
                for line in lines:
                    self.queue.put(line.decode("utf-8", "replace").rstrip("\r"))
        except OSError:
            pass
        if buf:
            self.queue.put(buf.decode("utf-8", "replace"))
        self.queue.put(_EOF)

    def get(self, deadline: float):
        """The next line, _EOF, or raises queue.Empty at the deadline."""
        return self.queue.get(timeout=max(0.0, deadline - time.monotonic()))

    def drain(self) -> None:
        """Drop the lines waiting (an EOF stays: the VM is gone)."""
        while True:
            try:
                line = self.queue.get_nowait()
            except queue.Empty:
                return
            if line is _EOF:
                self.queue.put(_EOF)
                return


class _SnapshotFailed(Exception):
    pass


def died_before_a_check(console: bytes) -> bool:
    """Did the guest end before the payload's first check began (crash.CHECK_BEGIN on the
    console)? Then the death is the guest's own: nothing of a module had run (the first
    check loads it; before it the agent unpacks the payload and the check library loads)."""
    return CHECK_BEGIN.format(id="").encode() not in console


def payload_console(console: str) -> str:
    """What the payload's verdict is judged on: the console from the agent's line that it
    began (what the guest printed before, a warning of a starved guest or a late report of
    the module before, is nobody's in this payload; console.log keeps it)."""
    begun = console.find(PAYLOAD_BEGUN)
    return console if begun < 0 else console[console.rfind("\n", 0, begun) + 1 :]


def _field(reply: object, name: str) -> object:
    """A field of a QMP reply (a JSON object), None when absent."""
    return reply.get(name) if isinstance(reply, dict) else None


class GuestDidNotStart(EnvironmentProblem):
    """The guest never said it was ready; `reached_init`: its /init ran (the kernel booted),
    `exited`: QEMU ended by itself (a triple fault ends it at once with -no-reboot)."""

    def __init__(self, message: str, reached_init: bool, exited: bool):
        super().__init__(message)
        self.reached_init = reached_init
        self.exited = exited


class AgentVM:
    def __init__(self, machine: Machine, store: SnapshotStore | None = None, workdir: Path | None = None,
                 save_snapshot: bool = True):
        self.machine = replace(machine, serial=(CONSOLE, AGENT_PORT))  # the agent's ports, whatever was given
        self.store = store
        self.save_snapshot = save_snapshot  # in a batch, one VM saves it: the others would repeat the work
        self._tmp = tempfile.TemporaryDirectory(prefix="dbgscaffold-agent-")
        self.dir = Path(self._tmp.name)
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.boot: BootInfo | None = None
        self.payloads = 0
        self.warm_ups = 0  # of self.payloads, run by warm_up()
        self._console_carried = ""  # for the next payload's console.log: a warm-up's, a replaced guest's
        self.exiting = False  # set at exit, before close()
        self.dead = True
        self._saving: Path | None = None  # a snapshot being written: close() removes it
        self._closing = threading.Lock()
        _LIVE.add(self)

    # ------------------------------------------------------------ lifecycle

    def _spawn(self, incoming: str = "", qmp: bool = False) -> None:
        sock = self.dir / "results.sock"
        qmp_path = self.dir / "qmp.sock"
        for p in (sock, qmp_path):
            p.unlink(missing_ok=True)
        m = replace(self.machine, serial=(CONSOLE, replace(AGENT_PORT, path=str(sock))),
                    qmp=str(qmp_path) if qmp else "", incoming=incoming)
        self.argv = tuple(argv(m))
        self.qmp_path = qmp_path
        self.started = time.monotonic()
        proc = self.proc = spawn(self.argv)
        self.dead = False
        assert proc.stdout is not None and proc.stderr is not None  # spawn() pipes both
        self.console = Reader(proc.stdout, None, self.started, keep=CONSOLE_KEPT)
        self.stderr = Reader(proc.stderr)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = self.started + 30
        while True:
            try:
                self.sock.connect(str(sock))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise EnvironmentProblem(f"error: QEMU did not start: {self.stderr.text().strip()[-500:]}") from None
                time.sleep(0.005)
        self.lines = _Lines(self.sock)

    def start(self, timeout: float = 60.0) -> BootInfo:
        key = version = None
        note = "snapshots off: booted fresh"
        if self.store is not None:
            version = qemu_version(self.machine.qemu)
            key = snapshot_key(self.machine, version)
            state = self.store.find(key)
            if state is not None:
                try:
                    self.boot = self._restore(state, key, timeout)
                    return self.boot
                except _SnapshotFailed as exc:
                    self.close()
                    self.store.discard(key)
                    note = f"the snapshot did not load ({exc}): discarded it, booted fresh"
            else:
                note = "no snapshot for this kernel, initramfs and QEMU yet: booted fresh"
        self.boot = self._fresh(timeout, key, version, note)
        return self.boot

    def _restore(self, state: Path, key: str, timeout: float) -> BootInfo:
        self._spawn(incoming=f"exec:cat {shlex.quote(str(state))}", qmp=True)
        try:
            qmp = Qmp(self.qmp_path, timeout=min(timeout, 30))
            try:
                after = qmp.wait_status("inmigrate", timeout=min(timeout, 30))
                if after != "paused":
                    raise _SnapshotFailed(f"the VM is '{after}' after loading, not 'paused'")
                qmp.execute("cont")
            finally:
                qmp.close()
        except (QmpError, OSError) as exc:
            detail = self.stderr.data().decode(errors="replace").strip().splitlines()
            raise _SnapshotFailed(f"{exc}{'; ' + detail[-1] if detail else ''}") from None
        return BootInfo("snapshot", time.monotonic() - self.started, f"restored snapshot {key}")

    def _fresh(self, timeout: float, key: str | None, version: str | None, note: str) -> BootInfo:
        self._spawn(qmp=key is not None)
        deadline = self.started + timeout
        while True:
            try:
                line = self.lines.get(deadline)
            except queue.Empty:
                line = _EOF
            if line == READY:
                break
            if line is _EOF:
                console = self.console.data().decode(errors="replace")
                exited = time.monotonic() < deadline  # the port closed early: QEMU ended by itself
                tail = "\n".join(console.splitlines()[-15:])
                self.close()
                why = "QEMU exited before it was ready" if exited else f"it was not ready within {timeout:g} s"
                raise GuestDidNotStart(f"error: the guest ({Path(self.machine.kernel).name}) did not come up: {why}. Console tail:\n{tail}",
                                       BOOT_MARKER in console, exited)
        seconds = time.monotonic() - self.started
        self.console.mark()  # the boot log is no payload's; a restored guest's console starts at its resume
        if key is not None and version is not None and self.save_snapshot:
            note += self.save(key, version)
        return BootInfo("fresh", seconds, note)

    def save(self, key: str, version: str) -> str:
        """Stop the ready guest, stream its state to the store, resume it."""
        store = self.store
        assert store is not None  # _fresh() saves only with a store
        tmp = self._saving = store.temporary(key)
        t0 = time.monotonic()
        try:
            qmp = Qmp(self.qmp_path)
            try:
                qmp.execute("stop")
                qmp.execute("migrate", uri=f"exec:cat > {shlex.quote(str(tmp))}")
                deadline = time.monotonic() + 60
                while (status := _field(qmp.execute("query-migrate"), "status")) not in ("completed", "failed", "cancelled"):
                    if time.monotonic() > deadline:
                        raise QmpError("saving took over 60 s")
                    time.sleep(0.01)
                qmp.execute("cont")
            finally:
                qmp.close()
            if status != "completed":
                raise QmpError(f"migration {status}")
            info = store.commit(key, tmp, self.machine, version, time.monotonic() - t0)
            return f"; saved a snapshot for next time ({info.size / 2**20:.0f} MB, {info.save_seconds:.2f} s)"
        except (QmpError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            return f"; could not save a snapshot ({exc})"
        except BaseException:  # ^C, SIGTERM in this thread
            self.close()  # removes the half-written state once QEMU's `cat` is gone
            raise
        finally:
            self._saving = None

    def close(self) -> None:
        """Kill QEMU (idempotent). A snapshot it was writing (^C, SIGTERM, from another
        thread) is removed after QEMU and its `cat` are gone, so none is left half-written."""
        with self._closing:  # the atexit hook and a worker thread may both get here
            proc, self.proc = self.proc, None
            if proc is not None:
                kill_group(proc)
                saving = self._saving
                if saving is not None:
                    saving.unlink(missing_ok=True)
                sock = getattr(self, "sock", None)
                if sock is not None:
                    sock.close()
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()
            self.dead = True

    def finish(self) -> None:
        """close() and remove the sockets' directory."""
        self.close()
        self._tmp.cleanup()

    def __enter__(self) -> AgentVM:
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    # ------------------------------------------------------------ payloads

    def run(self, payload: bytes, timeout: float, on_line: Callable[[str], None] | None = None) -> PayloadRun:
        """Send one payload and collect its KTAP until the agent's Done line, the
        guest's end, or `timeout` seconds (then QEMU is killed)."""
        if self.dead or self.boot is None:
            raise RuntimeError("the VM is not running")
        boot = self.boot
        # no module has run in this guest since its restore (a warm-up loads none): a death
        # before the payload's first check begins is the restored guest's own, never the module's
        first_after_restore = boot.kind == "snapshot" and self.payloads == self.warm_ups
        if self.payloads:
            if self.payloads == self.warm_ups:  # the first after a warm-up: console.log keeps all since the resume
                self._console_carried += self._console_text()
            self.console.mark()  # the first payload also gets what the guest printed before it came
        self.payloads += 1
        boot_seconds = boot.seconds if self.payloads == self.warm_ups + 1 else 0.0
        t0 = time.monotonic()
        sent: list[float] = []  # when the payload was all out (a big one takes a while at UART speed)
        token = new_token()  # after the build, never in the payload: see agent.py

        def send() -> None:
            try:
                self.sock.sendall(payload_message(payload, token))
                sent.append(time.monotonic())
            except OSError:
                pass  # the VM died or was killed: the loop below sees EOF or the deadline

        self.lines.drain()  # whatever arrived after the last Done is no result of this payload
        threading.Thread(target=send, daemon=True).start()
        lines: list[str] = []
        forged: list[str] = []
        forged_count = 0
        done = None
        timed_out = False
        deadline = t0 + timeout
        while True:
            checking_alive = first_after_restore and not lines
            wait_until = deadline
            if checking_alive:
                wait_until = min(deadline, sent[0] + RESTORE_ALIVE_SECONDS if sent else time.monotonic() + 0.5)
            try:
                line = self.lines.get(wait_until)
            except queue.Empty:
                now = time.monotonic()
                if now >= deadline:
                    timed_out = True
                    break
                if checking_alive and sent and now >= sent[0] + RESTORE_ALIVE_SECONDS:
                    return self._retry_fresh(payload, timeout, on_line, "the restored guest did not answer")
                continue
            if line is _EOF:
                break
            result_line, before = untag(line, token)
            if before.strip():  # not from our checks: a module's or a program's writing
                forged_count += 1
                if len(forged) < FORGED_KEPT:
                    forged.append(before[:200])
            if result_line is None:
                continue
            done = parse_done(result_line)
            if done is not None:
                break
            lines.append(result_line)
            if on_line is not None:
                on_line(result_line)
        wall = time.monotonic() - t0
        exit_status = None
        if done is None:  # dead, hung or out of time: this VM is finished
            if not timed_out and self.proc is not None:
                try:
                    exit_status = self.proc.wait(timeout=5)
                except Exception:
                    pass
            proc_stdout_reader = self.console
            self.close()
            proc_stdout_reader.thread.join(timeout=5)
            if first_after_restore and not timed_out and not self.exiting and died_before_a_check(proc_stdout_reader.data()):
                # Nothing of a module ran: the restored guest itself broke (seen on 6.12 under
                # TCG, rarely, as an oops in interrupt context); never the module's verdict.
                why = "the restored guest died before the payload's first check began"
                how = what_killed(self._console_text())
                return self._retry_fresh(payload, timeout, on_line, f"{why} ({how})" if how else why)
        console = self._console_text()
        results = "".join(line + "\n" for line in lines)
        carried, self._console_carried = self._console_carried, ""
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            (self.workdir / "console.log").write_text(carried + console)
            (self.workdir / "results.log").write_text(results)
        result = RunResult(
            argv=self.argv, exit_status=exit_status, timed_out=timed_out, console=payload_console(console), results=results,
            stderr=self.stderr.data().decode("utf-8", "replace"), wall_seconds=wall, boot_seconds=boot_seconds,
            forged=tuple(forged), forged_count=forged_count,
        )
        return PayloadRun(result, done, boot)

    def warm_up(self, payload: bytes, timeout: float) -> None:
        """Run `payload` for its side effect only, on a guest just restored: TCG's cache of
        translated code is not in the snapshot, so the first payload after a restore costs
        ~0.14 s more than the next (measured); a caller with time to spare (kbuild still
        compiling) pays it here. The guest's console so far goes into the next payload's
        console.log. A guest the warm-up leaves dead or unclean is replaced by a fresh boot
        and its snapshot discarded: the next payload never sees it."""
        if self.boot is None or self.boot.kind != "snapshot" or self.payloads:
            return
        workdir, self.workdir = self.workdir, None
        try:
            pr = self.run(payload, timeout)
        finally:
            self.workdir = workdir
        self.warm_ups += 1
        done = pr.done
        if done is None or done.modules_loaded or done.processes_left or decode_taint(done.taint).failed:
            self._replace_with_fresh(timeout, "the restored guest failed a warm-up that loads nothing")

    def _console_text(self) -> str:
        return self.console.data().decode("utf-8", "replace").replace("\r\n", "\n")

    def _replace_with_fresh(self, timeout: float, why: str) -> None:
        """Boot fresh instead of this guest, whose console goes into the next payload's
        console.log, and discard the snapshot it came from."""
        self.close()
        self._console_carried += f"{self._console_text()}\n--- dbgscaffold: {why}: a fresh boot ---\n"
        if self.store is not None:
            self.store.discard(snapshot_key(self.machine, qemu_version(self.machine.qemu)))
        self.boot = self._fresh(timeout, None, None, f"{why}: discarded the snapshot, booted fresh")
        self.payloads = self.warm_ups = 0

    def _retry_fresh(self, payload, timeout, on_line, why: str) -> PayloadRun:
        self._replace_with_fresh(timeout, why)
        return self.run(payload, timeout, on_line)
