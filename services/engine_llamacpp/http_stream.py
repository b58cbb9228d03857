"""A lean HTTP/1.1 reader for llama-server's token streams.

Every generated token reaches the engine service as one server-sent event, so the cost of
reading one is paid per token. httpx (with h11 and anyio under it) costs about 3x what a
plain asyncio stream costs per event here (measured: 105-144 vs about 31 us of CPU), so the
streamed ``/completion`` call alone goes through this reader; every other call to the child
stays on httpx. It speaks only what our own child sends over loopback: one request per
connection (``Connection: close``), an answer with ``Content-Length``, chunked, or ended by
closing the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson

MAX_HEAD = 64 * 1024  # status line and headers
MAX_ERROR_BODY = 1024 * 1024  # a non-200 answer is read this far, then cut
READ_SIZE = 64 * 1024
HEX_DIGITS = b"0123456789abcdefABCDEF"


class ProtocolError(ConnectionError):
    """The child's answer is not HTTP/1.1 as we read it (or it broke off mid-message)."""


class ChunkedDecoder:
    """Sans-IO decoder of a chunked body: bytes in, body bytes out, ``done`` after the last chunk."""

    def __init__(self) -> None:
        self._buffer = b""
        self._left = 0  # body bytes still to come in the current chunk
        self._skip_crlf = False  # the CRLF after a chunk's data is still to come
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out: list[bytes] = []
        while not self.done:
            if self._left:
                piece = self._buffer[: self._left]
                out.append(piece)
                self._left -= len(piece)
                self._buffer = self._buffer[len(piece) :]
                if self._left:
                    break  # the rest of this chunk is not here yet
                self._skip_crlf = True
            if self._skip_crlf:
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise ProtocolError("chunk data not followed by CRLF")
                self._buffer = self._buffer[2:]
                self._skip_crlf = False
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if len(self._buffer) > 1024:
                    raise ProtocolError("chunk size line too long")
                break
            size_field = self._buffer[:end].split(b";", 1)[0].strip()
            if not size_field or len(size_field) > 16 or size_field.strip(HEX_DIGITS):
                raise ProtocolError(f"bad chunk size {size_field[:32]!r}")  # int() would take -1, 0x1, 1_0
            size = int(size_field, 16)
            self._buffer = self._buffer[end + 2 :]
            if size == 0:
                self.done = True  # trailers, if any, are not read: the connection closes
            else:
                self._left = size
        return b"".join(out)


class StreamAnswer:
    """The head of an answer, and its body to read."""

    def __init__(self, status: int, headers: dict[bytes, bytes], reader: asyncio.StreamReader) -> None:
        self.status = status
        self.headers = headers
        self._reader = reader

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (each piece what one network read brought)."""
        if b"chunked" in self.headers.get(b"transfer-encoding", b"").lower():
            decoder = ChunkedDecoder()
            while not decoder.done:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    raise ProtocolError("the connection closed inside a chunked body")
                body = decoder.feed(data)
                if body:
                    yield body
            return
        length = self.headers.get(b"content-length")
        left = int(length) if length is not None and length.isdigit() else None
        while left is None or left > 0:
            data = await self._reader.read(READ_SIZE if left is None else min(left, READ_SIZE))
            if not data:
                if left is not None:
                    raise ProtocolError("the connection closed before the body's end")
                return
            if left is not None:
                left -= len(data)
            yield data

    async def read_error_body(self) -> bytes:
        """A non-200 answer's body, cut at MAX_ERROR_BODY."""
        parts: list[bytes] = []
        size = 0
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            async for data in self.body_chunks():
                parts.append(data)
                size += len(data)
                if size >= MAX_ERROR_BODY:
                    break
        return b"".join(parts)[:MAX_ERROR_BODY]


def _head(raw: bytes) -> tuple[int, dict[bytes, bytes]]:
    status_line, *lines = raw.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {status_line[:64]!r}")
    headers: dict[bytes, bytes] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class StreamingPoster:
    """POSTs JSON to one host and port, one connection per call, and can cut every open call
    at once (the model is being stopped: their streams end now)."""

    def __init__(self, host: str, port: int, connect_timeout_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self._open: set[asyncio.StreamWriter] = set()
        self._closed = False

    @contextlib.asynccontextmanager
    async def post(self, path: str, body: object) -> AsyncIterator[StreamAnswer]:
        """The answer to one POST; leaving the block closes its connection (which is how
        llama-server learns that a stream's reader went away, and stops generating)."""
        if self._closed:
            raise ConnectionError("the poster was closed")
        payload = orjson.dumps(body)
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the connection when it
        # completes just as the caller is cancelled, swallowing the cancellation, and the request
        # then ran to its end with nobody reading (issue 19: once in 380 disconnects).
        async with asyncio.timeout(self.connect_timeout_s):
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
        if self._closed:  # closed while connecting: this call is cut too
            writer.transport.abort()
            raise ConnectionError("the poster was closed")
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # cancelled as the connection opened: send nothing
            writer.transport.abort()
            raise asyncio.CancelledError
        self._open.add(writer)
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                % (path.encode(), self.host.encode(), self.port, len(payload))
                + payload
            )
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise ProtocolError("answer head too long") from None
            except asyncio.IncompleteReadError:
                raise ProtocolError("the connection closed before an answer") from None
            status, headers = _head(head[:-4])
            yield StreamAnswer(status, headers, reader)
        finally:
            self._open.discard(writer)
            # Abort, not close: close waits to send what is buffered (a long prompt the child
            # has not read yet) before the connection ends, and a pending read with it.
            writer.transport.abort()

    def close(self) -> None:
        """Cut every open call: their reads see the connection end at once."""
        self._closed = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
