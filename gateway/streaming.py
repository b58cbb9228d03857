"""Server-sent events, and the life of the gRPC calls behind an HTTP answer: written once for
every answer that runs calls (completions and chat, streamed or whole; pulls).

- An answer owns its calls (``Calls``) and cancels them however it ends (``Calls.owned``): done,
  failed, or the client gone. A stream's generator holds them, so when the client disconnects
  and Starlette closes it at a ``yield`` the cancel reaches the router and the engine stops
  (STYLE.md #10); a whole answer races its work against the disconnect instead
  (``Calls.whole``: a 499).
- An error before a stream's first byte is a plain HTTP error (``Calls.opening``); after it,
  the error goes in-band, then ``[DONE]`` (``sse_response``, STYLE.md #9); the Responses and
  Anthropic streams send their own error events instead and no ``[DONE]``.
- While some call has no first message yet (a model loading on demand), a stream sends
  keep-alive comments.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import grpc
import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse

from gateway import metrics
from gateway.errors import ApiError, error_body, from_rpc_error

logger = logging.getLogger(__name__)
R = TypeVar("R")
T = TypeVar("T")
KEEPALIVE = b": keep-alive\n\n"  # an SSE comment: clients ignore it, proxies see traffic
DONE = b"data: [DONE]\n\n"


def sse_bytes(payload: object) -> bytes:
    """One server-sent event carrying ``payload`` as JSON (UTF-8, not escaped)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_named(event: str, payload: object) -> bytes:
    """One server-sent event of type ``event`` (the Responses and Anthropic streams name theirs)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def sse_error(error: ApiError) -> bytes:
    """An error sent in-band after the stream started (the status line is already out), and
    the end of the stream."""
    return f"data: {json.dumps(error_body(error.status, error.message, error.param))}\n\n".encode() + DONE


async def first_message(call: grpc.aio.UnaryStreamCall[Any, R]) -> R | None:
    """Read the first message so that an error before any output is still a plain HTTP error."""
    try:
        message: Any = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    return None if message is grpc.aio.EOF else message


class Calls(Generic[R]):
    """The streaming gRPC calls of one HTTP request, each with its first message being read."""

    def __init__(self, calls: Sequence[grpc.aio.UnaryStreamCall[Any, R]]) -> None:
        self.calls = list(calls)
        self.firsts = [_reading(call) for call in self.calls]

    def cancel(self) -> None:
        for call, first in zip(self.calls, self.firsts, strict=True):
            first.cancel()
            call.cancel()  # a no-op when finished; otherwise the client left: stop the engine

    @contextmanager
    def owned(self) -> Iterator[None]:
        """The calls are cancelled when the block ends, however it ends."""
        try:
            yield
        finally:
            self.cancel()

    def opened(self) -> bool:
        """Whether every call has its first message (or its error)."""
        return all(first.done() for first in self.firsts)

    async def wait(self, timeout: float | None) -> None:
        """Until every call has its first message, or ``timeout`` passed."""
        await asyncio.wait(self.firsts, timeout=timeout)

    async def opening(self, timeout: float | None) -> None:
        """Before a stream starts: wait up to ``timeout`` for the first messages and raise an
        error that came (a plain HTTP error); anything raised here cancels the calls."""
        with self._cancelled_on_error():
            await self.wait(timeout)
            for first in self.firsts:
                if first.done():
                    first.result()

    async def messages(self, index: int) -> AsyncIterator[R]:
        """The messages of call ``index``, its first one included."""
        call, message = self.calls[index], await self.firsts[index]
        while message is not None:
            yield message
            read: Any = await call.read()
            message = None if read is grpc.aio.EOF else read

    async def whole(self, http_request: Request, work: Coroutine[Any, Any, T]) -> T:
        """For a whole answer: ``work``'s result, the calls cancelled however it ends; a 499
        when the client leaves first (``work`` is cancelled too)."""
        with self.owned():
            return await unless_disconnected(http_request, work)

    @contextmanager
    def _cancelled_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.cancel()
            raise


async def unless_disconnected(http_request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, or a 499 when the client leaves first; ``work`` (a unary gRPC call,
    say) is cancelled then, so the engine stops too."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_until_disconnect(http_request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise ApiError(499, "client disconnected")
    return task.result()


def _reading(call: grpc.aio.UnaryStreamCall[Any, R]) -> asyncio.Future[R | None]:
    reading = first_message(call)  # apart: inferred in ensure_future's context, R would widen
    return asyncio.ensure_future(reading)


async def _until_disconnect(http_request: Request) -> None:
    while True:
        message = await http_request.receive()
        if message["type"] == "http.disconnect":
            return


def sse_response(
    calls: Calls[Any],
    events: AsyncIterator[bytes],
    keepalive_s: float | None,
    route: str | None = None,
    done: bytes = DONE,
    in_band: Callable[[ApiError], bytes] = sse_error,
) -> StreamingResponse:
    """The SSE answer relaying ``events`` (made from ``calls``, which it owns): keep-alives while
    a call has no first message yet, then the events and ``done`` (OpenAI's ``[DONE]``; APIs
    whose streams end with an event of their own pass none), or an error in-band as ``in_band``
    writes it (an API's own error event). With ``route``, such an error is counted and logged
    under it."""

    async def relay() -> AsyncIterator[bytes]:
        with calls.owned():
            try:
                while not calls.opened():
                    yield KEEPALIVE
                    await calls.wait(keepalive_s)
                async for event in events:
                    yield event
                if done:
                    yield done
            except (grpc.aio.AioRpcError, ApiError) as exc:
                error = from_rpc_error(exc) if isinstance(exc, grpc.aio.AioRpcError) else exc
                if route is not None:
                    metrics.ERRORS.labels(route, str(error.status)).inc()
                    logger.warning("stream failed after it started: %s", error.message)
                yield in_band(error)

    return StreamingResponse(relay(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
