"""Running one request's generations through the router, streamed as SSE or gathered whole:
what completions and chat (and later APIs over the same Generate calls) share.

Other APIs over the same calls (Responses, Anthropic messages) run one generation through
``GenerationServing.answer`` with a shape of their own (``AnswerShape``).

A request becomes one Generate call per choice (several with ``n`` or a list of prompts);
their streams are merged, each chunk carrying its choice's index. The calls' lifetime (cancel
on disconnect), keep-alives and in-band errors are ``gateway.streaming``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.auth import loaded_only
from gateway.connection import Serving
from gateway.errors import ApiError
from gateway.generation.accounting import LatencyClock, Usages
from gateway.generation.protocol import GenerationFields
from gateway.generation.responses import Accumulated, ResponseBuilder
from gateway.metrics import route_label
from gateway.streaming import Calls, sse_bytes, sse_response
from switchyard import request_id
from switchyard.engines import ENGINE_NAMES
from switchyard.stream_metadata import served_model
from switchyard.v1 import inference_pb2 as pb

GenerateCalls = Calls[pb.GenerateResponse]


@dataclass
class GenerationContext:
    """One request's generations (one per choice) and what answering it needs."""

    requests: list[pb.GenerateRequest]
    prompts: list[int]  # the prompt index of each choice
    builder: ResponseBuilder
    stream: bool
    include_usage: bool
    route: str  # errors after a stream started are counted under it
    http_request: Request


class GenerationServing(Serving):
    """Runs the Generate calls of a request; a family's serving object adds its own request
    shape (``context`` then ``respond``)."""

    def context(self, body: GenerationFields, http_request: Request, builder: ResponseBuilder) -> GenerationContext:
        """The choices of ``body`` as Generate requests, for this caller."""
        requests, prompts = body.choices(body.inputs())
        for each in requests:
            each.loaded_only = loaded_only(http_request)
        route = route_label(http_request.scope)
        return GenerationContext(requests, prompts, builder, body.stream, body.include_usage, route, http_request)

    async def respond(self, ctx: GenerationContext) -> StreamingResponse | JSONResponse:
        """Run the generations of one request (one per choice): an SSE stream or a whole answer."""
        rid = request_id.current.get() or request_id.new_request_id()
        for index, request in enumerate(ctx.requests):  # choices get their index appended
            request.request_id = rid if len(ctx.requests) == 1 else f"{rid}-{index}"
        if ctx.stream:
            return await self._stream(ctx)
        return await self._whole(ctx)

    def _calls_of(self, requests: list[pb.GenerateRequest]) -> GenerateCalls:
        stub, timeout, metadata = self.connection.inference, self.settings.request_timeout_s, self.connection.metadata
        return Calls([stub.Generate(r, timeout=timeout, metadata=metadata) for r in requests])

    async def _stream(self, ctx: GenerationContext) -> StreamingResponse:
        """An SSE response. An error before the first message of every choice is a plain HTTP
        error, unless the first messages take longer than ``stream_keepalive_s`` (a model loading
        on demand): then the stream starts with keep-alive comments and a later error goes
        in-band."""
        clock = LatencyClock(ENGINE_NAMES.get(ctx.requests[0].engine))
        calls = self._calls_of(ctx.requests)
        await calls.opening(self.settings.stream_keepalive_s)
        events = _events(ctx, calls, clock, Usages(ctx.prompts))
        return sse_response(calls, events, self.settings.stream_keepalive_s, ctx.route)

    async def _whole(self, ctx: GenerationContext) -> JSONResponse:
        answers = await self._gather(ctx.requests, ctx.http_request)
        usages = Usages(ctx.prompts)
        for index, answer in enumerate(answers):
            assert answer.finished is not None
            usages.add(index, answer.finished)
        return JSONResponse(ctx.builder.whole(answers, usages.total()))

    async def _gather(self, requests: list[pb.GenerateRequest], http_request: Request) -> list[Accumulated]:
        """Every generation of a whole answer, finished (a 503 for one aborted), timed."""
        clock = LatencyClock(ENGINE_NAMES.get(requests[0].engine))
        calls = self._calls_of(requests)
        answers = [Accumulated() for _ in requests]

        async def gather(index: int) -> None:
            async for message in calls.messages(index):
                if message.HasField("delta"):
                    clock.delta()
                answers[index].add(message)

        async def gather_all() -> None:
            tasks = [asyncio.create_task(gather(i)) for i in range(len(answers))]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:  # one failed, or the client left: stop the others too
                    task.cancel()

        await calls.whole(http_request, gather_all())
        for answer in answers:
            if answer.finished is None:
                raise ApiError(503, "the backend ended the stream without finishing")
            _check_not_aborted(answer.finished)
            clock.finish(answer.finished)
        return answers

    async def answer(
        self, request: pb.GenerateRequest, http_request: Request, stream: bool, shape: AnswerShape
    ) -> StreamingResponse | JSONResponse:
        """Run one generation for an API with answers of its own shape (Responses, Anthropic
        messages): the same calls, request id, cancellation, keep-alives and metrics as
        completions and chat, shaped by ``shape``."""
        request.loaded_only = loaded_only(http_request)
        request.request_id = request_id.current.get() or request_id.new_request_id()
        if not stream:
            [whole] = await self._gather([request], http_request)
            return JSONResponse(shape.whole(whole))
        clock = LatencyClock(ENGINE_NAMES.get(request.engine))
        calls = self._calls_of([request])
        await calls.opening(self.settings.stream_keepalive_s)

        async def events() -> AsyncIterator[bytes]:
            if not shape.model:  # the request named none: the stream's headers say which
                shape.model = served_model(await calls.calls[0].initial_metadata())
            async for event in shape.stream(_timed(calls.messages(0), clock)):
                yield event

        route = route_label(http_request.scope)
        return sse_response(
            calls, events(), self.settings.stream_keepalive_s, route, done=b"", in_band=shape.stream_error
        )


class AnswerShape(Protocol):
    """How an API family answers one generation: its stream's events and its whole body."""

    model: str  # the model to name; empty until the stream's headers or the Finished tell

    def stream(self, messages: AsyncIterator[pb.GenerateResponse]) -> AsyncIterator[bytes]:
        """The stream's events, ending with the API's own last event."""
        ...

    def whole(self, answer: Accumulated) -> object:
        """The whole answer's JSON body."""
        ...

    def stream_error(self, error: ApiError) -> bytes:
        """An error after the stream started, as the API's own event(s)."""
        ...


async def _timed(
    messages: AsyncIterator[pb.GenerateResponse], clock: LatencyClock
) -> AsyncIterator[pb.GenerateResponse]:
    """The messages of one generation, timed; an aborted one raises (a 503 in-band)."""
    async for message in messages:
        if message.HasField("delta"):
            clock.delta()
        else:
            _check_not_aborted(message.finished)
            clock.finish(message.finished)
        yield message


def _check_not_aborted(finished: pb.Finished) -> None:
    if finished.reason == pb.FINISH_REASON_ABORTED:
        raise ApiError(503, "generation aborted: the model was unloaded or replaced while it ran; retry")


async def _events(
    ctx: GenerationContext, calls: GenerateCalls, clock: LatencyClock, usages: Usages
) -> AsyncIterator[bytes]:
    """The stream's events after its keep-alives: every choice's chunks, then the usage."""
    builder = ctx.builder
    if not builder.model:  # the request named none: the stream's headers say which
        builder.model = served_model(await calls.calls[0].initial_metadata())
    if len(calls.calls) == 1:  # the common case: no merging, nothing more per token
        async for chunk in _chunks(0, calls.messages(0), builder, clock, usages):
            yield chunk
    else:
        async for chunk in _merged(calls, builder, clock, usages):
            yield chunk
    if ctx.include_usage:
        yield sse_bytes(builder.usage_chunk(usages.total()))


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
            if plain and delta.text and not (delta.tool_calls or delta.reasoning):
                yield builder.text_event(index, delta.text)
            else:
                yield sse_bytes(builder.chunk(index, delta, None))
        else:
            _check_not_aborted(message.finished)
            clock.finish(message.finished)
            usages.add(index, message.finished)
            yield sse_bytes(builder.chunk(index, None, message.finished))


async def _merged(
    calls: GenerateCalls, builder: ResponseBuilder, clock: LatencyClock, usages: Usages
) -> AsyncIterator[bytes]:
    """The events of several choices, interleaved as they come."""
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    async def pump(index: int) -> None:
        try:
            async for event in _chunks(index, calls.messages(index), builder, clock, usages):
                await queue.put(event)
            await queue.put(None)
        except BaseException as exc:
            await queue.put(exc)

    pumps = [asyncio.create_task(pump(i)) for i in range(len(calls.calls))]
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
