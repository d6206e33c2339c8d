"""Keep the first and the last part of a stream that may be huge (a printk flood, a build's output).

    kept = Kept(1 << 20)      # at most 1 MiB of each end
    kept.add(chunk) ...
    kept.bytes()              # head + a note of what was cut + tail

Pure.
"""

from __future__ import annotations


class Kept:
    """The first and last `keep` bytes of a stream, and how much there was."""

    def __init__(self, keep: int):
        self.keep = keep
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.keep - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - self.keep)]

    @property
    def cut(self) -> int:
        """Bytes dropped from the middle."""
        return self.total - len(self.head) - len(self.tail)

    def bytes(self) -> bytes:
        middle = f"\n[... {self.cut} bytes not kept ...]\n".encode() if self.cut > 0 else b""
        return bytes(self.head) + middle + bytes(self.tail)

    def text(self) -> str:
        return self.bytes().decode("utf-8", "replace")
