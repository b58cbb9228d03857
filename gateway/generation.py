"""Running generations through the router, streamed as SSE or gathered whole.

A request becomes one Generate call per choice (several with ``n`` or a list of prompts);
their streams are merged, each chunk carrying its choice's index. Every stream generator owns
its gRPC calls and cancels them in ``finally``: when the client goes away Starlette closes the
generator, the cancel reaches the router and the engine stops (STYLE.md #10). A whole answer
races the calls against the client's disconnect for the same reason. After the first SSE byte
an error goes in-band, then ``[DONE]`` (STYLE.md #9).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway import metrics
from gateway.connection import Router
from gateway.errors import ApiError, from_rpc_error, sse_error
from gateway.protocol import GenerationFields
from gateway.responses import Accumulated, ResponseBuilder, sse_bytes, usage_json
from gateway.settings import GatewaySettings
from switchyard import request_id
from switchyard.engines import ENGINE_NAMES
from switchyard.stream_metadata import served_model
from switchyard.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)
R = TypeVar("R")
Call = grpc.aio.UnaryStreamCall[pb.GenerateRequest, pb.GenerateResponse]
KEEPALIVE = b": keep-alive\n\n"  # an SSE comment: clients ignore it, proxies see traffic
DONE = b"data: [DONE]\n\n"


class LatencyClock:
    """Time to first token and inter-token gaps, labelled by engine once it is known."""

    def __init__(self, requested_engine: str | None) -> None:
        self.start = time.monotonic()
        self.engine = requested_engine or "unknown"
        self.first: float | None = None
        self.gaps: list[float] = []
        self.last = 0.0

    def delta(self) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now - self.start
        else:
            self.gaps.append(now - self.last)
        self.last = now

    def finish(self, finished: pb.Finished) -> None:
        self.engine = ENGINE_NAMES.get(finished.engine, self.engine)
        if self.first is not None:
            metrics.TIME_TO_FIRST_TOKEN.labels(self.engine).observe(self.first)
            self.first = None  # once per request, however many choices
        histogram = metrics.INTER_TOKEN_LATENCY.labels(self.engine)
        for gap in self.gaps:
            histogram.observe(gap)
        self.gaps.clear()
        metrics.GENERATED_TOKENS.labels(self.engine).inc(finished.usage.completion_tokens)


async def first_message(call: grpc.aio.UnaryStreamCall[Any, R]) -> R | None:
    """Read the first message so that an error before any output is still a plain HTTP error."""
    try:
        message: Any = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    return None if message is grpc.aio.EOF else message


def _check_not_aborted(finished: pb.Finished) -> None:
    if finished.reason == pb.FINISH_REASON_ABORTED:
        raise ApiError(503, "generation aborted: the model was unloaded or replaced while it ran; retry")


class Usages:
    """Usage over the choices: completions summed, each prompt counted once."""

    def __init__(self, prompts: Sequence[int]) -> None:
        self.prompts = prompts  # the prompt index of each choice
        self.prompt_tokens: dict[int, int] = {}
        self.completion_tokens = 0
        self.cached_tokens = 0

    def add(self, index: int, finished: pb.Finished) -> None:
        usage = finished.usage
        self.prompt_tokens.setdefault(self.prompts[index], usage.prompt_tokens)
        self.completion_tokens += usage.completion_tokens
        self.cached_tokens = max(self.cached_tokens, usage.cached_tokens)

    def total(self) -> Any:
        return usage_json(sum(self.prompt_tokens.values()), self.completion_tokens, self.cached_tokens)


async def respond(
    connection: Router,
    requests: list[pb.GenerateRequest],
    prompts: list[int],
    builder: ResponseBuilder,
    body: GenerationFields,
    settings: GatewaySettings,
    http_request: Request,
    route: str,
) -> StreamingResponse | JSONResponse:
    """Run the generations of one request (one per choice): an SSE stream or a whole answer."""
    rid = request_id.current.get() or request_id.new_request_id()
    for index, request in enumerate(requests):  # choices get their index appended
        request.request_id = rid if len(requests) == 1 else f"{rid}-{index}"
    if body.stream:
        return await stream_response(connection, requests, prompts, builder, body.include_usage, settings, route)
    return await whole_response(connection, requests, prompts, builder, settings.request_timeout_s, http_request)


async def stream_response(
    connection: Router,
    requests: list[pb.GenerateRequest],
    prompts: list[int],
    builder: ResponseBuilder,
    include_usage: bool,
    settings: GatewaySettings,
    route: str,
) -> StreamingResponse:
    """An SSE response. An error before the first message of every choice is a plain HTTP
    error, unless the first messages take longer than ``stream_keepalive_s`` (a model loading
    on demand): then the stream starts with keep-alive comments and a later error goes
    in-band."""
    clock = LatencyClock(ENGINE_NAMES.get(requests[0].engine))
    stub, metadata = connection.inference, connection.metadata
    calls: list[Call] = [stub.Generate(r, timeout=settings.request_timeout_s, metadata=metadata) for r in requests]
    firsts = [_first(call) for call in calls]
    try:
        await asyncio.wait(firsts, timeout=settings.stream_keepalive_s)
        for first in firsts:
            if first.done():
                first.result()  # an early error: a plain HTTP answer
    except BaseException:
        for call, first in zip(calls, firsts, strict=True):
            first.cancel()
            call.cancel()
        raise
    usages = Usages(prompts)

    async def events() -> AsyncIterator[bytes]:
        try:
            while not all(first.done() for first in firsts):
                yield KEEPALIVE
                await asyncio.wait(firsts, timeout=settings.stream_keepalive_s)
            if not builder.model:  # the request named none: the stream's headers say which
                builder.model = served_model(await calls[0].initial_metadata())
            if len(calls) == 1:  # the common case: no merging, nothing more per token
                stream = _messages(calls[0], firsts[0].result())
                async for chunk in _chunks(0, stream, builder, clock, usages):
                    yield chunk
            else:
                async for chunk in _merged(calls, firsts, builder, clock, usages):
                    yield chunk
            if include_usage:
                yield sse_bytes(builder.usage_chunk(usages.total()))
            yield DONE
        except (grpc.aio.AioRpcError, ApiError) as exc:
            error = from_rpc_error(exc) if isinstance(exc, grpc.aio.AioRpcError) else exc
            metrics.ERRORS.labels(route, str(error.status)).inc()
            logger.warning("stream failed after it started: %s", error.message)
            yield sse_error(error).encode()
        finally:
            for call, first in zip(calls, firsts, strict=True):
                first.cancel()
                call.cancel()  # a no-op when finished; otherwise the client left: stop the engine

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _first(call: Call) -> asyncio.Future[pb.GenerateResponse | None]:
    reading = first_message(call)
    return asyncio.ensure_future(reading)


async def _messages(call: Call, first: pb.GenerateResponse | None) -> AsyncIterator[pb.GenerateResponse]:
    message = first
    while message is not None:
        yield message
        read: Any = await call.read()
        message = None if read is grpc.aio.EOF else read


async def _chunks(
    index: int,
    messages: AsyncIterator[pb.GenerateResponse],
    builder: ResponseBuilder,
    clock: LatencyClock,
    usages: Usages,
) -> AsyncIterator[bytes]:
    """The SSE events of one choice. A delta of text alone (the common case) takes the
    builder's template: no dict is built per token."""
    if builder.chat or builder.echo:
        yield sse_bytes(builder.chunk(index, None, None, first=True))
    plain = not builder.want_logprobs
    async for message in messages:
        if message.HasField("delta"):
            clock.delta()
            delta = message.delta
            if plain and delta.text and not delta.tool_calls:
                yield builder.text_event(index, delta.text)
            else:
                yield sse_bytes(builder.chunk(index, delta, None))
        else:
            _check_not_aborted(message.finished)
            clock.finish(message.finished)
            usages.add(index, message.finished)
            yield sse_bytes(builder.chunk(index, None, message.finished))


async def _merged(
    calls: list[Call],
    firsts: Sequence[asyncio.Future[pb.GenerateResponse | None]],
    builder: ResponseBuilder,
    clock: LatencyClock,
    usages: Usages,
) -> AsyncIterator[bytes]:
    """The events of several choices, interleaved as they come."""
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    async def pump(index: int) -> None:
        try:
            async for event in _chunks(index, _messages(calls[index], firsts[index].result()), builder, clock, usages):
                await queue.put(event)
            await queue.put(None)
        except BaseException as exc:
            await queue.put(exc)

    pumps = [asyncio.create_task(pump(i)) for i in range(len(calls))]
    try:
        running = len(pumps)
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in pumps:
            task.cancel()


async def until_disconnect(http_request: Request) -> None:
    while True:
        message = await http_request.receive()
        if message["type"] == "http.disconnect":
            return


async def whole_response(
    connection: Router,
    requests: list[pb.GenerateRequest],
    prompts: list[int],
    builder: ResponseBuilder,
    timeout: float,
    http_request: Request,
) -> JSONResponse:
    clock = LatencyClock(ENGINE_NAMES.get(requests[0].engine))
    answers = [Accumulated() for _ in requests]

    async def gather(request: pb.GenerateRequest, answer: Accumulated) -> None:
        async for message in connection.inference.Generate(request, timeout=timeout, metadata=connection.metadata):
            if message.HasField("delta"):
                clock.delta()
            answer.add(message)

    async def gather_all() -> None:
        tasks = [asyncio.create_task(gather(r, a)) for r, a in zip(requests, answers, strict=True)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # one failed, or the client left: stop the others too
                task.cancel()

    work = asyncio.ensure_future(gather_all())
    gone = asyncio.ensure_future(until_disconnect(http_request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()  # the client left: cancelling the calls stops the engine
    if not work.done() or work.cancelled():
        raise ApiError(499, "client disconnected")
    try:
        work.result()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    usages = Usages(prompts)
    for index, answer in enumerate(answers):
        if answer.finished is None:
            raise ApiError(503, "the backend ended the stream without finishing")
        _check_not_aborted(answer.finished)
        clock.finish(answer.finished)
        usages.add(index, answer.finished)
    return JSONResponse(builder.whole(answers, sum(usages.prompt_tokens.values())))
