"""Reading a child process's output as lines without trusting it.

``asyncio.StreamReader``'s line iteration fails on a line over its 64 KiB limit; a relay that
dies that way leaves the child blocked on a full pipe, frozen for good. ``bounded_lines`` reads
in chunks, cuts every line to ``limit`` bytes (saying how much was cut) and never fails on what
the child writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

MAX_LINE_BYTES = 16 * 1024
READ_BYTES = 64 * 1024


def _text(head: bytes | bytearray, cut: int) -> str:
    text = bytes(head).decode(errors="replace").rstrip("\r")
    return f"{text}... [{cut} more bytes cut]" if cut else text


async def bounded_lines(stream: asyncio.StreamReader, limit: int = MAX_LINE_BYTES) -> AsyncIterator[str]:
    """Each line of ``stream`` (without its newline), at most ``limit`` bytes of it, until EOF."""
    head = bytearray()
    cut = 0

    def keep(piece: bytes) -> None:
        nonlocal cut
        room = max(limit - len(head), 0)
        head.extend(piece[:room])
        cut += max(len(piece) - room, 0)

    while chunk := await stream.read(READ_BYTES):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            keep(chunk[start:end])
            yield _text(head, cut)
            head.clear()
            cut = 0
            start = end + 1
        keep(chunk[start:])
    if head or cut:
        yield _text(head, cut)
