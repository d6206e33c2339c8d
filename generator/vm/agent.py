"""The guest agent: one generic initramfs that boots, says it is ready and runs
whatever payloads the host sends it over the results UART.

Why: the initramfs no longer depends on the module, so (1) QEMU can boot while
kbuild is still compiling, (2) one boot can run many modules in turn (batch),
and (3) the booted, waiting guest can be saved once and restored in ~0.15 s
instead of booting (snapshot.py). The protocol, on ttyS1 (raw, 8-bit clean):

    guest: `dbgscaffold: agent ready`          (the snapshot is taken here)
    host:  `payload <size>\\n` + <size> bytes  (a gzip'd newc cpio)
    guest: the payload's KTAP (from PAYLOAD_ROOT/run.sh), then
           `# dbgscaffold: done <n> <modules loaded> <taint>`
    host:  another payload ... or `quit\\n` (the guest powers off)

Every file is read with `dd ... iflag=fullblock`, never through stdio
(`head -c` buffers and would swallow the next header).

Pure: agent_script(), pack_payload(), parse_done(). Edge: agent_initramfs().
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .initramfs import APPLETS, RESULTS_PORT, FileSpec, build_initramfs, file_members, init_script, newc_archive

READY = "dbgscaffold: agent ready"
DONE_PREFIX = "# dbgscaffold: done "
PAYLOAD_ROOT = "/run/payload"  # emptied before each payload
PAYLOAD_SCRIPT = f"{PAYLOAD_ROOT}/run.sh"
AGENT_APPLETS = APPLETS + ("cpio", "gunzip", "basename", "dirname")
_DONE = re.compile(r"^# dbgscaffold: done (\d+) (\d+) (\d+)$")


@dataclass(frozen=True)
class Done:
    """The agent's closing line for one payload."""

    number: int  # payloads run by this guest so far
    modules_loaded: int  # lines of /proc/modules afterwards
    taint: int  # /proc/sys/kernel/tainted afterwards


def agent_script(port: str = RESULTS_PORT) -> str:
    """The loop /init runs: fd 3 writes results (opened by init_script), fd 4 reads payloads."""
    return f"""exec 4<{port}
n=0
echo '{READY}' >&3
while read -r word size <&4; do
    case $word in
    payload)
        n=$((n + 1))
        rm -rf {PAYLOAD_ROOT}; mkdir -p {PAYLOAD_ROOT}
        dd of=/run/payload.gz bs="$size" count=1 iflag=fullblock <&4 2>/dev/null
        (cd {PAYLOAD_ROOT} && gunzip -c /run/payload.gz | cpio -idm 2>/dev/null)
        echo "dbgscaffold: begin payload $n" > /dev/kmsg
        sh {PAYLOAD_SCRIPT}
        echo "dbgscaffold: end payload $n" > /dev/kmsg
        echo "{DONE_PREFIX}$n $(wc -l < /proc/modules) $(dd if=/proc/sys/kernel/tainted 2>/dev/null)" >&3
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


def payload_message(payload: bytes) -> bytes:
    return f"payload {len(payload)}\n".encode() + payload


def parse_done(line: str) -> Done | None:
    m = _DONE.match(line.strip())
    return Done(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
