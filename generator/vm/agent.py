"""The guest agent: one generic initramfs that boots, says it is ready and runs
whatever payloads the host sends it over the results UART.

Why: the initramfs no longer depends on the module, so (1) QEMU can boot while
kbuild is still compiling, (2) one boot can run many modules in turn (batch),
and (3) the booted, waiting guest can be saved once and restored in ~0.15 s
instead of booting (snapshot.py). The protocol, on ttyS1 (raw, 8-bit clean):

    guest: `dbgscaffold: agent ready`          (the snapshot is taken here)
    host:  `payload <size> <token>\\n` + <size> bytes  (a gzip'd newc cpio)
    guest: the payload's KTAP (from PAYLOAD_ROOT/run.sh), then
           `# dbgscaffold: done <n> <modules loaded> <taint> <processes left>`,
           every line after `<token> `
    host:  another payload ... or `quit\\n` (the guest powers off)

The token is random, made per payload once the module is built, and never in the
payload nor in any process's environment (/proc/PID/environ): run.sh is sourced
in a subshell that holds it in a shell variable. A module (kernel code the payload
loads) that writes KTAP-looking lines to the console, /dev/kmsg or this port does
not know it, so the host (session.py) takes no line without it as a result. A
process the payload leaves behind (it could write into the next payload's results)
makes the host replace the guest. docs/security.md says what a module can still do.

Every file is read with `dd ... iflag=fullblock`, never through stdio
(`head -c` buffers and would swallow the next header).

Pure: agent_script(), pack_payload(), parse_done(), untag(). Edge: agent_initramfs(), new_token().
"""

from __future__ import annotations

import gzip
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .initramfs import APPLETS, RESULTS_PORT, FileSpec, build_initramfs, file_members, init_script, newc_archive

READY = "dbgscaffold: agent ready"
PAYLOAD_BEGUN = "dbgscaffold: begin payload"  # on the console once a payload is unpacked, before it runs
DONE_PREFIX = "# dbgscaffold: done "
PAYLOAD_ROOT = "/run/payload"  # emptied before each payload
PAYLOAD_SCRIPT = f"{PAYLOAD_ROOT}/run.sh"
AGENT_APPLETS = APPLETS + ("cpio", "gunzip", "basename", "dirname")
_DONE = re.compile(r"^# dbgscaffold: done (\d+) (\d+) (\d+) (-?\d+)$")


@dataclass(frozen=True)
class Done:
    """The agent's closing line for one payload."""

    number: int  # payloads run by this guest so far
    modules_loaded: int  # lines of /proc/modules afterwards
    taint: int  # /proc/sys/kernel/tainted afterwards
    processes_left: int = 0  # user processes more than before the payload (one left running)


def agent_script(port: str = RESULTS_PORT) -> str:
    """The loop /init runs: fd 3 writes results (opened by init_script), fd 4 reads payloads."""
    return f"""exec 4<{port}
n=0
# user processes: those running a program (a kernel thread has no /proc/PID/exe), also
# one a module started with call_usermodehelper (a child of kthreadd, but a program); a
# zombie runs nothing and writes nothing. One stat each: reading /proc/PID/stat with ash's
# bytewise `read` cost 18 ms a call under TCG, twice a payload.
user_procs() {{
    c=0
    for p in /proc/[0-9]*; do
        [ -e $p/exe ] && c=$((c + 1))
    done
    echo $c
}}
echo '{READY}' >&3
while read -r word size token <&4; do
    case $word in
    payload)
        n=$((n + 1))
        rm -rf {PAYLOAD_ROOT}; mkdir -p {PAYLOAD_ROOT}
        dd of=/run/payload.gz bs="$size" count=1 iflag=fullblock <&4 2>/dev/null
        (cd {PAYLOAD_ROOT} && gunzip -c /run/payload.gz | cpio -idm 2>/dev/null)
        echo "{PAYLOAD_BEGUN} $n" > /dev/kmsg
        before=$(user_procs)
        (_dbgs_tag="$token "; . {PAYLOAD_SCRIPT})
        echo "dbgscaffold: end payload $n" > /dev/kmsg
        echo "$token {DONE_PREFIX}$n $(wc -l < /proc/modules) $(dd if=/proc/sys/kernel/tainted 2>/dev/null) $(($(user_procs) - before))" >&3
        ;;
    quit) break ;;
    esac
done
"""


def agent_initramfs(library: FileSpec, extra: Sequence[FileSpec] = (), cache: Path | None = None) -> Path:
    """The cached agent initramfs: busybox, /init with the agent loop, the check
    library, and `extra` files (outside PAYLOAD_ROOT, which each payload empties)."""
    for f in extra:
        if f.dest == PAYLOAD_ROOT or f.dest.startswith(PAYLOAD_ROOT + "/"):
            raise ValueError(f"{f.dest}: {PAYLOAD_ROOT} is emptied for every payload; put shared guest files elsewhere")
    return build_initramfs(init_script(agent_script()), [library, *extra], applets=AGENT_APPLETS, cache=cache)


def pack_payload(files: Sequence[FileSpec]) -> bytes:
    """The gzip'd newc cpio of `files`, whose dest paths lie under PAYLOAD_ROOT.
    Deterministic (mtime 0), so the same payload is the same bytes."""
    members = file_members(files, PAYLOAD_ROOT)
    return gzip.compress(newc_archive(members), compresslevel=9, mtime=0)


def new_token() -> str:
    """A payload's token: 128 random bits, as hex (no shell or KTAP meaning)."""
    return secrets.token_hex(16)


def payload_message(payload: bytes, token: str) -> bytes:
    return f"payload {len(payload)} {token}\n".encode() + payload


def untag(line: str, token: str) -> tuple[str | None, str]:
    """(the result after this token, or None; what came before the token). A module can
    write a fragment without a newline to the port, which then prefixes our next line:
    the line still counts, the fragment is what was forged."""
    at = line.find(token + " ") if token else -1
    if at < 0:
        return None, line
    return line[at + len(token) + 1:], line[:at]


def parse_done(line: str) -> Done | None:
    m = _DONE.match(line.strip())
    return Done(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))) if m else None
