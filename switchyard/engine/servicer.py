"""One gRPC servicer for Inference and Control, shared by every engine.

Pure wiring over the model host: request checks common to all engines (engine name), the
model each request names (waited for or loaded on demand by the host), error mapping in one
place (STYLE.md #7), metrics and request logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import grpc
from google.protobuf.message import Message

from switchyard import request_id
from switchyard.engine import metrics
from switchyard.engine.coalesce import coalesced
from switchyard.engine.host import ModelHost
from switchyard.engine.params import check_name, embed_from_proto, generation_from_proto, tokenize_from_proto
from switchyard.engine.protocol import ModelInfo, RunningModel
from switchyard.engine.slot import ModelSlot
from switchyard.engine.tool_calls import CallShaper, forced
from switchyard.engines import ENGINE_NAMES, engine_name
from switchyard.enums import check_enums
from switchyard.errors import Context, EngineError, InvalidArgument, grpc_errors
from switchyard.stream_metadata import stream_metadata
from switchyard.v1 import (
    common_pb2,
    control_pb2,
    control_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
)

logger = logging.getLogger(__name__)


async def shaped(
    stream: AsyncIterator[inference_pb2.GenerateResponse], shaper: CallShaper
) -> AsyncIterator[inference_pb2.GenerateResponse]:
    """The engine's stream with tool calls taken out of the text."""
    try:
        async for raw in stream:
            for response in shaper.feed(raw):
                yield response
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator: close it with us


class EngineServicer(inference_pb2_grpc.InferenceServicer, control_pb2_grpc.ControlServicer):
    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self.kind = host.adapter.kind
        self.name = ENGINE_NAMES[self.kind]

    # --- checks shared by every call ------------------------------------------------------

    def _check_engine(self, engine: common_pb2.Engine.ValueType) -> None:
        if engine not in (common_pb2.ENGINE_UNSPECIFIED, self.kind):
            asked = engine_name(engine)
            raise InvalidArgument(f"this is the {self.name} engine; the request is for {asked}")

    def _request(
        self,
        request: Message,
        engine: common_pb2.Engine.ValueType,
        model: str,
        loaded_only: bool,
        task: control_pb2.ModelTask.ValueType | None = control_pb2.MODEL_TASK_GENERATE,
        group_size: int = 1,
    ) -> AbstractAsyncContextManager[tuple[ModelSlot, RunningModel, ModelInfo]]:
        """Checks, then the host's hold on the model a request names."""
        check_enums(request)
        self._check_engine(engine)
        return self.host.request(check_name("model", model), task, loaded_only, group_size)

    # --- Inference ------------------------------------------------------------------------

    async def Generate(
        self, request: inference_pb2.GenerateRequest, context: Context
    ) -> AsyncIterator[inference_pb2.GenerateResponse]:
        start = time.monotonic()
        code = grpc.StatusCode.OK
        request_id.bind(request.request_id)
        metrics.IN_FLIGHT.labels(self.name).inc()
        try:
            async with (
                grpc_errors(context, "Generate"),
                self._request(
                    request, request.engine, request.model, request.loaded_only, group_size=request.group_size
                ) as (slot, running, info),
            ):
                params = generation_from_proto(request, info.vocab_size, info.max_model_len)
                request_id.bind(params.request_id)  # one made up if the caller sent none
                logger.info("generate start (%s)", slot.name)
                # The stream says at once which model and engine serve it (headers, before any
                # token): a caller needs no status call to label its answer.
                await context.send_initial_metadata(stream_metadata(slot.name, self.name))
                first = True
                stream = running.generate(params)
                plan = params.tool_plan
                if plan is not None and forced(plan):  # only then: no cost per token otherwise
                    stream = shaped(stream, CallShaper(plan))
                async for response in coalesced(stream, self.host.settings.stream_interval):
                    if first and response.HasField("delta"):
                        metrics.TIME_TO_FIRST_TOKEN.labels(self.name).observe(time.monotonic() - start)
                        first = False
                    if response.HasField("finished"):
                        self._finish(response.finished, slot)
                    yield response
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            metrics.IN_FLIGHT.labels(self.name).dec()
            metrics.REQUESTS.labels(self.name, code.name).inc()
            metrics.REQUEST_DURATION.labels(self.name).observe(time.monotonic() - start)

    def _finish(self, finished: inference_pb2.Finished, slot: ModelSlot) -> None:
        finished.engine = self.kind
        finished.model = slot.name
        usage = finished.usage
        metrics.GENERATED_TOKENS.labels(self.name).inc(usage.completion_tokens)
        metrics.PROMPT_TOKENS.labels(self.name).inc(usage.prompt_tokens)
        logger.info(
            "generate done: %s, %d+%d tokens",
            inference_pb2.FinishReason.Name(finished.reason),
            usage.prompt_tokens,
            usage.completion_tokens,
        )

    async def Tokenize(
        self, request: inference_pb2.TokenizeRequest, context: Context
    ) -> inference_pb2.TokenizeResponse:
        async with (
            grpc_errors(context, "Tokenize"),
            self._request(request, request.engine, request.model, request.loaded_only, None) as (_, running, info),
        ):
            return await running.tokenize(tokenize_from_proto(request, info.max_model_len))
        raise AssertionError("unreachable")

    async def Detokenize(
        self, request: inference_pb2.DetokenizeRequest, context: Context
    ) -> inference_pb2.DetokenizeResponse:
        async with (
            grpc_errors(context, "Detokenize"),
            self._request(request, request.engine, request.model, request.loaded_only, None) as (_, running, info),
        ):
            ids = list(request.token_ids)
            bad = next((t for t in ids if t >= info.vocab_size), None)
            if bad is not None:
                raise InvalidArgument(f"token id {bad} is outside the vocabulary ({info.vocab_size})")
            return inference_pb2.DetokenizeResponse(text=await running.detokenize(ids))
        raise AssertionError("unreachable")

    async def Embed(self, request: inference_pb2.EmbedRequest, context: Context) -> inference_pb2.EmbedResponse:
        start = time.monotonic()
        request_id.bind(request.request_id)
        async with (
            grpc_errors(context, "Embed"),
            self._request(
                request, request.engine, request.model, request.loaded_only, control_pb2.MODEL_TASK_EMBED
            ) as (
                slot,
                running,
                info,
            ),
        ):
            params = embed_from_proto(request, info.vocab_size, info.max_model_len)
            request_id.bind(params.request_id)
            response = await running.embed(params)
            response.engine, response.model = self.kind, slot.name
            metrics.PROMPT_TOKENS.labels(self.name).inc(response.usage.prompt_tokens)
            logger.info(
                "embed done: %d inputs, %d tokens, %.1f ms",
                len(params.inputs),
                response.usage.prompt_tokens,
                (time.monotonic() - start) * 1000,
            )
            return response
        raise AssertionError("unreachable")

    # --- Control --------------------------------------------------------------------------

    async def LoadModel(
        self, request: control_pb2.LoadModelRequest, context: Context
    ) -> AsyncIterator[control_pb2.LoadModelResponse]:
        async with grpc_errors(context, "LoadModel"):
            check_enums(request)
            self._check_engine(request.engine)
            options = request.WhichOneof("options")
            if options not in (None, self.name):  # the oneof's names are the engines' names
                raise InvalidArgument(f"{options} options given to the {self.name} engine")
            # The load belongs to the engine: a caller that goes away does not stop it.
            ticket = self.host.begin_load(request)
            task = ticket.task
            assert task is not None
            while True:
                done = task.done()  # read before the status, so the last event is the final state
                status, changed = self.host.board.snapshot()
                state, progress, message = ticket.event()
                yield control_pb2.LoadModelResponse(state=state, progress=progress, message=message, status=status)
                if done:
                    break
                waiter = asyncio.ensure_future(changed.wait())
                try:
                    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
            exc = task.exception()
            if exc is not None:
                if isinstance(exc, EngineError):
                    raise exc
                raise AssertionError(f"a load failed outside its slot: {exc!r}") from exc

    async def UnloadModel(
        self, request: control_pb2.UnloadModelRequest, context: Context
    ) -> control_pb2.UnloadModelResponse:
        async with grpc_errors(context, "UnloadModel"):
            check_enums(request)
            self._check_engine(request.engine)
            if not request.model and not request.all:
                raise InvalidArgument("name the model to unload, or set all to unload every model")
            await self.host.unload(request.model)
            return control_pb2.UnloadModelResponse(statuses=[self.host.board.status])
        raise AssertionError("unreachable")

    def _selected(self, request: Message, engine: common_pb2.Engine.ValueType) -> bool:
        check_enums(request)
        return engine in (common_pb2.ENGINE_UNSPECIFIED, self.kind)

    async def GetStatus(self, request: control_pb2.GetStatusRequest, context: Context) -> control_pb2.GetStatusResponse:
        async with grpc_errors(context, "GetStatus"):
            if not self._selected(request, request.engine):
                return control_pb2.GetStatusResponse()
            await self.host.refresh()
            return control_pb2.GetStatusResponse(statuses=[self.host.board.status])
        raise AssertionError("unreachable")

    async def WatchStatus(
        self, request: control_pb2.WatchStatusRequest, context: Context
    ) -> AsyncIterator[control_pb2.WatchStatusResponse]:
        async with grpc_errors(context, "WatchStatus"):
            if not self._selected(request, request.engine):
                return
            async for status in self.host.board.watch():
                yield control_pb2.WatchStatusResponse(status=status)

    async def PullModel(
        self, request: control_pb2.PullModelRequest, context: Context
    ) -> AsyncIterator[control_pb2.PullModelResponse]:
        async with grpc_errors(context, "PullModel"):
            check_enums(request)
            self._check_engine(request.engine)
            async for progress in self.host.pulls.pull(request):
                yield control_pb2.PullModelResponse(progress=progress)

    async def ListModels(
        self, request: control_pb2.ListModelsRequest, context: Context
    ) -> control_pb2.ListModelsResponse:
        async with grpc_errors(context, "ListModels"):
            if not self._selected(request, request.engine):
                return control_pb2.ListModelsResponse()
            return control_pb2.ListModelsResponse(models=await self.host.catalogue.entries(self.host.slots()))
        raise AssertionError("unreachable")
