"""Running a generation through the router, streamed as SSE or gathered whole.

The stream generator owns the gRPC call and cancels it in ``finally``: when the client goes
away Starlette closes the generator, the cancel reaches the router and the engine stops
(STYLE.md #10). A whole answer races the call against the client's disconnect for the same
reason. After the first SSE byte an error goes in-band, then ``[DONE]`` (STYLE.md #9).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway import metrics
from gateway.connection import Router
from gateway.errors import ApiError, from_rpc_error, sse_error
from gateway.protocol import GenerationFields
from gateway.responses import Accumulated, ResponseBuilder
from gateway.settings import GatewaySettings
from switchyard.engines import ENGINE_NAMES
from switchyard.v1 import common_pb2, control_pb2, inference_pb2_grpc
from switchyard.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)
R = TypeVar("R")


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


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
        histogram = metrics.INTER_TOKEN_LATENCY.labels(self.engine)
        for gap in self.gaps:
            histogram.observe(gap)
        metrics.GENERATED_TOKENS.labels(self.engine).inc(finished.usage.completion_tokens)


async def first_message(call: grpc.aio.UnaryStreamCall[Any, R]) -> R | None:
    """Read the first message so that an error before any output is still a plain HTTP error."""
    try:
        message: Any = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    return None if message is grpc.aio.EOF else message


KEEPALIVE = ": keep-alive\n\n"  # an SSE comment: clients ignore it, proxies see traffic


def _check_not_aborted(finished: pb.Finished) -> None:
    if finished.reason == pb.FINISH_REASON_ABORTED:
        raise ApiError(503, "generation aborted: the model was unloaded or replaced while it ran; retry")


async def stream_response(
    stub: inference_pb2_grpc.InferenceAsyncStub,
    request: pb.GenerateRequest,
    builder: ResponseBuilder,
    include_usage: bool,
    settings: GatewaySettings,
    route: str,
) -> StreamingResponse:
    """An SSE response. An error before the first message is a plain HTTP error, unless the
    first message takes longer than ``stream_keepalive_s`` (a model loading on demand): then
    the stream starts with keep-alive comments and a later error goes in-band."""
    clock = LatencyClock(ENGINE_NAMES.get(request.engine))
    call = stub.Generate(request, timeout=settings.request_timeout_s)
    reading = first_message(call)
    first_read = asyncio.ensure_future(reading)
    try:
        await asyncio.wait({first_read}, timeout=settings.stream_keepalive_s)
        first = first_read.result() if first_read.done() else None
    except BaseException:
        first_read.cancel()
        call.cancel()
        raise

    async def events() -> AsyncIterator[str]:
        try:
            while not first_read.done():
                yield KEEPALIVE
                await asyncio.wait({first_read}, timeout=settings.stream_keepalive_s)
            message = first if first is not None else first_read.result()
            if builder.chat:
                yield sse(builder.chunk(None, None, first=True))
            while message is not None:
                if message.HasField("delta"):
                    clock.delta()
                    yield sse(builder.chunk(message.delta, None))
                else:
                    _check_not_aborted(message.finished)
                    clock.finish(message.finished)
                    yield sse(builder.chunk(None, message.finished))
                    if include_usage:
                        yield sse(builder.usage_chunk(message.finished))
                read: Any = await call.read()
                message = None if read is grpc.aio.EOF else read
            yield "data: [DONE]\n\n"
        except (grpc.aio.AioRpcError, ApiError) as exc:
            error = from_rpc_error(exc) if isinstance(exc, grpc.aio.AioRpcError) else exc
            metrics.ERRORS.labels(route, str(error.status)).inc()
            logger.warning("stream failed after it started: %s", error.message)
            yield sse_error(error)
        finally:
            first_read.cancel()
            call.cancel()  # a no-op when finished; otherwise the client left: stop the engine

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def respond(
    connection: Router,
    request: pb.GenerateRequest,
    builder: ResponseBuilder,
    body: GenerationFields,
    settings: GatewaySettings,
    http_request: Request,
    route: str,
) -> StreamingResponse | JSONResponse:
    """Run one generation through the router: an SSE stream or a whole answer."""
    if body.stream:
        if not builder.model:
            builder.model = await served_model(connection, request.engine)
        return await stream_response(connection.inference, request, builder, body.include_usage, settings, route)
    return await whole_response(connection.inference, request, builder, settings.request_timeout_s, http_request)


async def served_model(connection: Router, engine: common_pb2.Engine.ValueType) -> str:
    """The model name for stream chunks when the request named none: the one loaded, if only
    one is (otherwise chunks carry the name once the Finished message tells it)."""
    answer = await connection.control.GetStatus(control_pb2.GetStatusRequest(engine=engine), timeout=10)
    names = {s.model for s in answer.statuses if s.state == control_pb2.MODEL_STATE_LOADED and s.model}
    return names.pop() if len(names) == 1 else ""


async def until_disconnect(http_request: Request) -> None:
    while True:
        message = await http_request.receive()
        if message["type"] == "http.disconnect":
            return


async def whole_response(
    stub: inference_pb2_grpc.InferenceAsyncStub,
    request: pb.GenerateRequest,
    builder: ResponseBuilder,
    timeout: float,
    http_request: Request,
) -> JSONResponse:
    clock = LatencyClock(ENGINE_NAMES.get(request.engine))
    answer = Accumulated()

    async def gather() -> None:
        async for message in stub.Generate(request, timeout=timeout):
            if message.HasField("delta"):
                clock.delta()
            answer.add(message)

    work = asyncio.ensure_future(gather())
    gone = asyncio.ensure_future(until_disconnect(http_request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()  # the client left: cancelling the call stops the engine
    if not work.done() or work.cancelled():
        raise ApiError(499, "client disconnected")
    try:
        work.result()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    if answer.finished is None:
        raise ApiError(503, "the backend ended the stream without finishing")
    _check_not_aborted(answer.finished)
    clock.finish(answer.finished)
    return JSONResponse(builder.whole(answer))
