"""A minimal QMP client: enough to stop, save, query and resume a VM.

QMP is line-delimited JSON over a unix socket: a greeting, then
`qmp_capabilities`, then commands answered by {"return": ...} or
{"error": ...}, with asynchronous {"event": ...} lines in between (skipped).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path


class QmpError(RuntimeError):
    pass


class Qmp:
    def __init__(self, path: Path, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:  # QEMU creates the socket a moment after it starts
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    self.sock.close()
                    raise QmpError(f"no QMP socket at {path} after {timeout:g} s") from None
                time.sleep(0.005)
        self.sock.settimeout(timeout)
        self.stream = self.sock.makefile("rwb", buffering=0)
        self._line()  # the greeting
        self.execute("qmp_capabilities")

    def _line(self) -> dict:
        raw = self.stream.readline()
        if not raw:
            raise QmpError("QEMU closed the QMP connection")
        return json.loads(raw)

    def execute(self, command: str, **arguments) -> object:
        message = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.stream.write((json.dumps(message) + "\n").encode())
        while True:
            reply = self._line()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QmpError(f"{command}: {reply['error'].get('desc', reply['error'])}")

    def status(self) -> str:
        reply = self.execute("query-status")
        return str(reply["status"]) if isinstance(reply, dict) else ""

    def wait_status(self, leave: str, timeout: float) -> str:
        """Poll until the run state is no longer `leave`; the new state."""
        deadline = time.monotonic() + timeout
        while (state := self.status()) == leave:
            if time.monotonic() > deadline:
                raise QmpError(f"still '{leave}' after {timeout:g} s")
            time.sleep(0.01)
        return state

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            self.sock.close()
