"""The token-stream reader against a scripted HTTP server on a real socket: chunked bodies cut
anywhere, error answers, connections that break off, and cutting every open stream at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest

from services.engine_llamacpp.http_stream import ChunkedDecoder, ProtocolError, StreamingPoster
from tests.helpers import until

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_a_chunked_body_decodes_however_it_is_cut(step: int) -> None:
    body = chunked(b"data: {}\n\n", b"x" * 300, b"data: end\n\n")
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(body[i : i + step]) for i in range(0, len(body), step))
    assert out == b"data: {}\n\n" + b"x" * 300 + b"data: end\n\n" and decoder.done


@pytest.mark.parametrize("bad", [b"zz\r\nab\r\n", b"2\r\nabXY", b"f" * 2000, b"-1\r\n", b"0x2\r\nab\r\n"])
def test_a_broken_chunked_body_is_a_protocol_error(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(bad)


async def serve(script: Script) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the test requests carry small bodies: read with the head
        try:
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def read_all(poster: StreamingPoster) -> tuple[int, bytes]:
    async with poster.post("/completion", {"prompt": "hi"}) as answer:
        if answer.status != 200:
            return answer.status, await answer.read_error_body()
        return answer.status, b"".join([piece async for piece in answer.body_chunks()])


async def test_a_chunked_stream_sent_piece_by_piece_reads_whole() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
        for byte in chunked(b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(bytes([byte]))
            await writer.drain()

    server, port = await serve(script)
    async with server:
        assert await read_all(StreamingPoster("127.0.0.1", port)) == (200, b"data: 1\n\ndata: 2\n\n")


async def test_an_error_answer_gives_its_status_and_body() -> None:
    error = orjson.dumps({"error": {"code": 400, "message": "bad n_predict"}})

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(error), error))

    server, port = await serve(script)
    async with server:
        assert await read_all(StreamingPoster("127.0.0.1", port)) == (400, error)


@pytest.mark.parametrize(
    "answer",
    [b"", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n", b"garbage\r\n\r\n"],
    ids=["no answer", "closed mid-body", "not http"],
)
async def test_an_answer_that_breaks_off_is_a_connection_error(answer: bytes) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)

    server, port = await serve(script)
    async with server:
        with pytest.raises(ConnectionError):
            await read_all(StreamingPoster("127.0.0.1", port))


async def test_close_ends_every_open_stream_and_refuses_new_ones() -> None:
    hold = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n")
        await hold.wait()  # the stream stays open until the client cuts it

    server, port = await serve(script)
    poster = StreamingPoster("127.0.0.1", port)
    got: list[bytes] = []

    async def reading() -> None:
        async with poster.post("/completion", {}) as answer:
            async for piece in answer.body_chunks():
                got.append(piece)

    async with server:
        task = asyncio.create_task(reading())
        await until(lambda: got, "the first event to be read")
        poster.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 10)
        hold.set()
        with pytest.raises(ConnectionError):
            await read_all(poster)


async def test_close_cuts_a_stream_whose_request_the_server_never_read() -> None:
    """A long prompt still in our send buffer must not keep the connection (and the read) alive."""
    stop = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stop.wait()
        writer.close()

    server = await asyncio.start_server(never_reads, "127.0.0.1", 0)
    poster = StreamingPoster("127.0.0.1", server.sockets[0].getsockname()[1])
    async with server:
        task = asyncio.create_task(read_all_prompt(poster, "x" * (32 * 1024 * 1024)))
        await until(lambda: poster._open, "the connection to open")
        poster.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 10)
        stop.set()


async def test_close_while_connecting_cuts_that_call_too() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"data: 1\n\n"))

    server, port = await serve(script)
    poster = StreamingPoster("127.0.0.1", port)
    async with server:
        task = asyncio.create_task(read_all(poster))
        await asyncio.sleep(0)  # the call has started connecting
        poster.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 10)


async def read_all_prompt(poster: StreamingPoster, prompt: str) -> bytes:
    async with poster.post("/completion", {"prompt": prompt}) as answer:
        return b"".join([piece async for piece in answer.body_chunks()])


async def test_a_caller_cancelled_as_its_connection_opens_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection completes in the same turn the caller is cancelled: the call must end
    cancelled, never go on to send its request (Python 3.11's wait_for swallowed this)."""
    requests: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(b"a request arrived")

    server, port = await serve(script)
    poster = StreamingPoster("127.0.0.1", port)
    real_open = asyncio.open_connection
    caller: asyncio.Task[bytes] | None = None

    async def open_then_cancel_the_caller(*args: object, **kwargs: object) -> object:
        connection = await real_open(*args, **kwargs)  # type: ignore[arg-type]
        assert caller is not None
        caller.cancel()  # arrives as the connection is handed over
        return connection

    monkeypatch.setattr(asyncio, "open_connection", open_then_cancel_the_caller)
    async with server:
        caller = asyncio.create_task(read_all_prompt(poster, "x"))
        with pytest.raises(asyncio.CancelledError):
            await caller
        await asyncio.sleep(0.2)  # a request sent by mistake would reach the script by now
        assert requests == [] and not poster._open
