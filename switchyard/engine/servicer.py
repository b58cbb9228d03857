"""One gRPC servicer for Inference and Control, shared by every engine.

Pure wiring over the ``Engine`` protocol: request checks common to all engines (engine name,
model name, state), error mapping in one place (STYLE.md #7), metrics and request logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from switchyard.engine import metrics
from switchyard.engine.params import generation_from_proto, tokenize_from_proto
from switchyard.engine.protocol import Engine, ModelInfo
from switchyard.engines import ENGINE_NAMES, engine_name
from switchyard.errors import (
    Conflict,
    Context,
    EngineError,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
    grpc_errors,
)
from switchyard.v1 import (
    common_pb2,
    control_pb2,
    control_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
)

logger = logging.getLogger(__name__)


SERVICE_NAMES = (
    inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name,
    control_pb2.DESCRIPTOR.services_by_name["Control"].full_name,
)


class EngineServicer(inference_pb2_grpc.InferenceServicer, control_pb2_grpc.ControlServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = ENGINE_NAMES[engine.kind]
        self._load_task: asyncio.Task[None] | None = None

    # --- checks shared by every inference call -------------------------------------------

    def _check_engine(self, engine: common_pb2.Engine.ValueType) -> None:
        if engine not in (common_pb2.ENGINE_UNSPECIFIED, self.engine.kind):
            asked = engine_name(engine)
            raise InvalidArgument(f"this is the {self.name} engine; the request is for {asked}")

    def _ready_model(self, engine: common_pb2.Engine.ValueType, model: str) -> ModelInfo:
        self._check_engine(engine)
        status = self.engine.board.status
        info = self.engine.model
        if status.state == control_pb2.MODEL_STATE_LOADING:
            raise Unavailable(f"{self.name} engine is loading {status.model}")
        if status.state == control_pb2.MODEL_STATE_ERROR:
            raise Unavailable(f"{self.name} engine is in error: {status.error}")
        if info is None:
            raise FailedPrecondition(f"no model loaded on the {self.name} engine")
        if model and model != info.name:
            raise FailedPrecondition(f"model {model!r} is not loaded on the {self.name} engine (loaded: {info.name!r})")
        return info

    # --- Inference ------------------------------------------------------------------------

    async def Generate(
        self, request: inference_pb2.GenerateRequest, context: Context
    ) -> AsyncIterator[inference_pb2.GenerateResponse]:
        start = time.monotonic()
        code = grpc.StatusCode.OK
        metrics.IN_FLIGHT.labels(self.name).inc()
        try:
            async with grpc_errors(context, "Generate"):
                info = self._ready_model(request.engine, request.model)
                params = generation_from_proto(request, info.vocab_size, info.max_model_len)
                logger.info("generate %s start", params.request_id)
                first = True
                async for response in self.engine.generate(params):
                    if first and response.HasField("delta"):
                        metrics.TIME_TO_FIRST_TOKEN.labels(self.name).observe(time.monotonic() - start)
                        first = False
                    if response.HasField("finished"):
                        response.finished.engine = self.engine.kind
                        usage = response.finished.usage
                        metrics.GENERATED_TOKENS.labels(self.name).inc(usage.completion_tokens)
                        metrics.PROMPT_TOKENS.labels(self.name).inc(usage.prompt_tokens)
                        logger.info(
                            "generate %s done: %s, %d+%d tokens",
                            params.request_id,
                            inference_pb2.FinishReason.Name(response.finished.reason),
                            usage.prompt_tokens,
                            usage.completion_tokens,
                        )
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

    async def Tokenize(
        self, request: inference_pb2.TokenizeRequest, context: Context
    ) -> inference_pb2.TokenizeResponse:
        async with grpc_errors(context, "Tokenize"):
            self._ready_model(request.engine, request.model)
            return await self.engine.tokenize(tokenize_from_proto(request))
        raise AssertionError("unreachable")

    async def Detokenize(
        self, request: inference_pb2.DetokenizeRequest, context: Context
    ) -> inference_pb2.DetokenizeResponse:
        async with grpc_errors(context, "Detokenize"):
            info = self._ready_model(request.engine, request.model)
            ids = list(request.token_ids)
            bad = next((t for t in ids if t >= info.vocab_size), None)
            if bad is not None:
                raise InvalidArgument(f"token id {bad} is outside the vocabulary ({info.vocab_size})")
            return inference_pb2.DetokenizeResponse(text=await self.engine.detokenize(ids))
        raise AssertionError("unreachable")

    # --- Control --------------------------------------------------------------------------

    async def LoadModel(
        self, request: control_pb2.LoadModelRequest, context: Context
    ) -> AsyncIterator[control_pb2.LoadModelResponse]:
        async with grpc_errors(context, "LoadModel"):
            self._check_engine(request.engine)
            options = request.WhichOneof("options")
            if options not in (None, self.name):  # the oneof's names are the engines' names
                raise InvalidArgument(f"{options} options given to the {self.name} engine")
            spec = self.engine.prepare_load(request)
            if self._load_task is not None and not self._load_task.done():
                raise Conflict(f"a load is already running on the {self.name} engine")
            logger.info("load %s (%s)", spec.path, spec.served_name)
            self.engine.board.mark_loading(spec.served_name, str(spec.path), "queued")
            # The load belongs to the engine: a caller that goes away does not stop it.
            task = asyncio.create_task(self.engine.load(spec), name=f"load {spec.served_name}")
            self._load_task = task
            async for status in self._until_done(task):
                yield control_pb2.LoadModelResponse(
                    state=status.state,
                    progress=status.load_progress,
                    message=status.load_message or status.error,
                    status=status,
                )
            exc = task.exception()
            if exc is not None:
                if isinstance(exc, EngineError):
                    raise exc
                raise FailedPrecondition(f"loading {spec.served_name} failed: {exc}") from exc

    async def _until_done(self, task: asyncio.Task[None]) -> AsyncIterator[control_pb2.EngineStatus]:
        """Board updates while ``task`` runs, then the final status once it is done."""
        while not task.done():
            status, changed = self.engine.board.snapshot()
            yield status
            waiter = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        yield self.engine.board.status

    async def UnloadModel(
        self, request: control_pb2.UnloadModelRequest, context: Context
    ) -> control_pb2.UnloadModelResponse:
        async with grpc_errors(context, "UnloadModel"):
            self._check_engine(request.engine)
            if self._load_task is not None and not self._load_task.done():
                raise Conflict(f"a load is running on the {self.name} engine; unload after it")
            await self.engine.unload()
            return control_pb2.UnloadModelResponse(statuses=[self.engine.board.status])
        raise AssertionError("unreachable")

    def _selected(self, engine: common_pb2.Engine.ValueType) -> bool:
        return engine in (common_pb2.ENGINE_UNSPECIFIED, self.engine.kind)

    async def GetStatus(self, request: control_pb2.GetStatusRequest, context: Context) -> control_pb2.GetStatusResponse:
        async with grpc_errors(context, "GetStatus"):
            if not self._selected(request.engine):
                return control_pb2.GetStatusResponse()
            await self.engine.refresh_load()
            return control_pb2.GetStatusResponse(statuses=[self.engine.board.status])
        raise AssertionError("unreachable")

    async def WatchStatus(
        self, request: control_pb2.WatchStatusRequest, context: Context
    ) -> AsyncIterator[control_pb2.WatchStatusResponse]:
        async with grpc_errors(context, "WatchStatus"):
            if not self._selected(request.engine):
                return
            async for status in self.engine.board.watch():
                yield control_pb2.WatchStatusResponse(status=status)

    async def ListModels(
        self, request: control_pb2.ListModelsRequest, context: Context
    ) -> control_pb2.ListModelsResponse:
        async with grpc_errors(context, "ListModels"):
            if not self._selected(request.engine):
                return control_pb2.ListModelsResponse()
            return control_pb2.ListModelsResponse(models=self.engine.list_models())
        raise AssertionError("unreachable")
