"""The router's Inference and Control servicer: the contract of an engine, over backends.

Generate retries on another replica only when a backend fails before its first message, so
no token is ever sent twice; cancellation and deadlines pass through to the backend call.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from services.router.backends import Backend, BackendPool
from services.router.catalogue import Catalogue
from services.router.picker import EnginePolicy, choose, eligible
from switchyard import request_id
from switchyard.engines import engine_name
from switchyard.enums import check_enums
from switchyard.errors import Context, InvalidArgument, NotFound, Unavailable, grpc_errors, trailers
from switchyard.hub_names import ModelRef, canonical
from switchyard.model_status import model_in
from switchyard.stream_metadata import ours
from switchyard.v1 import common_pb2, control_pb2, control_pb2_grpc, inference_pb2, inference_pb2_grpc

logger = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E")
# Failures that say nothing was done, so another replica may take the request.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


def _timeout(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining, 0.001)


class LatestStatuses:
    """What one WatchStatus caller has yet to be sent: the latest status per backend. A slow
    watcher skips intermediate states but never the current one, and holds at most one
    status per backend however far behind it falls."""

    def __init__(self) -> None:
        self._pending: dict[str, control_pb2.EngineStatus] = {}
        self._ready = asyncio.Event()

    def put(self, address: str, status: control_pb2.EngineStatus) -> None:
        self._pending[address] = status
        self._ready.set()

    async def take(self) -> list[control_pb2.EngineStatus]:
        await self._ready.wait()
        self._ready.clear()
        taken, self._pending = list(self._pending.values()), {}
        return taken


class RouterServicer(inference_pb2_grpc.InferenceServicer, control_pb2_grpc.ControlServicer):
    def __init__(
        self,
        pool: BackendPool,
        rng: random.Random | None = None,
        catalogue: Catalogue | None = None,
        policy: EnginePolicy | None = None,
    ) -> None:
        self.pool = pool
        self.policy = policy or EnginePolicy()
        self.rng = rng or random.Random()
        self.catalogue = catalogue or Catalogue()
        self._watchers: set[LatestStatuses] = set()

    def publish(self, backend: Backend) -> None:
        """Called by the pool on every backend status change."""
        for watcher in self._watchers:
            watcher.put(backend.address, backend.status)

    async def _pick(self, engine: common_pb2.Engine.ValueType, model: str, exclude: set[str]) -> Backend:
        model = canonical(model)
        backends = self.pool.backends()
        try:
            candidates = eligible(backends, engine, model, policy=self.policy)
        except NotFound:  # held nowhere: maybe under a backend's model roots, or on the hub
            of_engine = self.pool.backends(engine)
            loadable = await self.catalogue.holders(model, of_engine)
            if ModelRef.looks_like(model):
                loadable |= {b.address for b in of_engine if b.reachable and b.status.autopull}
            candidates = eligible(backends, engine, model, loadable, self.policy)
        remaining = [b for b in candidates if b.address not in exclude]
        if not remaining:
            kind = "" if engine == common_pb2.ENGINE_UNSPECIFIED else f"{engine_name(engine)} "
            raise Unavailable(f"every {kind}backend for this request failed")
        chosen = choose(remaining, self.rng)
        assert isinstance(chosen, Backend)
        return chosen

    # --- Inference ------------------------------------------------------------------------

    async def Generate(  # type: ignore[override]  # its responses are passed on serialized
        self, request: inference_pb2.GenerateRequest, context: Context
    ) -> AsyncIterator[bytes]:
        """The backend's stream, passed on as it comes: messages are not decoded and encoded
        again (see ``add_to_server``); its initial metadata (model, engine) goes on with the
        first message, once the router has committed to that backend."""
        request_id.bind(request.request_id)
        async with grpc_errors(context, "Generate"):
            check_enums(request)
            tried: set[str] = set()
            while True:
                backend = await self._pick(request.engine, request.model, tried)
                logger.info("generate on %s (%s)", backend.address, request.model or "any model")
                backend.outstanding += 1
                call = backend.generate_raw(request, timeout=_timeout(context), metadata=backend.metadata)
                started = False
                try:
                    async for response in call:
                        if not started:
                            started = True
                            await context.send_initial_metadata(ours(await call.initial_metadata()))
                        yield response
                    return
                except grpc.aio.AioRpcError as exc:
                    if started or exc.code() not in RETRYABLE:
                        await context.abort(exc.code(), exc.details() or exc.code().name, trailers(exc))
                    logger.warning(
                        "backend %s failed before its first token (%s); retrying", backend.address, exc.details()
                    )
                    tried.add(backend.address)
                finally:
                    backend.outstanding -= 1
                    call.cancel()  # a no-op when done; otherwise the caller left: stop the backend

    async def _unary(
        self,
        engine: common_pb2.Engine.ValueType,
        model: str,
        context: Context,
        send: Callable[[Backend], Awaitable[T]],
    ) -> T:
        tried: set[str] = set()
        while True:
            backend = await self._pick(engine, model, tried)
            try:
                return await send(backend)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE:
                    await context.abort(exc.code(), exc.details() or exc.code().name, trailers(exc))
                tried.add(backend.address)

    async def Tokenize(
        self, request: inference_pb2.TokenizeRequest, context: Context
    ) -> inference_pb2.TokenizeResponse:
        async with grpc_errors(context, "Tokenize"):
            check_enums(request)
            return await self._unary(
                request.engine,
                request.model,
                context,
                lambda b: b.inference.Tokenize(request, timeout=_timeout(context)),
            )
        raise AssertionError("unreachable")

    async def Detokenize(
        self, request: inference_pb2.DetokenizeRequest, context: Context
    ) -> inference_pb2.DetokenizeResponse:
        async with grpc_errors(context, "Detokenize"):
            check_enums(request)
            return await self._unary(
                request.engine,
                request.model,
                context,
                lambda b: b.inference.Detokenize(request, timeout=_timeout(context)),
            )
        raise AssertionError("unreachable")

    async def Embed(self, request: inference_pb2.EmbedRequest, context: Context) -> inference_pb2.EmbedResponse:
        request_id.bind(request.request_id)
        async with grpc_errors(context, "Embed"):
            check_enums(request)
            return await self._unary(
                request.engine,
                request.model,
                context,
                lambda b: b.inference.Embed(request, timeout=_timeout(context)),
            )
        raise AssertionError("unreachable")

    # --- Control --------------------------------------------------------------------------

    def _replicas(self, engine: common_pb2.Engine.ValueType, what: str) -> list[Backend]:
        if engine == common_pb2.ENGINE_UNSPECIFIED:
            raise InvalidArgument(f"{what} through the router needs engine (vllm or llamacpp)")
        replicas = [b for b in self.pool.backends(engine) if b.reachable]
        if not replicas:
            raise Unavailable(f"no {engine_name(engine)} backend is reachable")
        return replicas

    async def _fan_out(
        self,
        replicas: list[Backend],
        call: Callable[[Backend], AsyncIterable[E]],
        mark: Callable[[E, Backend], None],
        context: Context,
    ) -> AsyncIterator[E]:
        """The events of one streaming call to every replica, as they come; then the first
        failure, if any, with its code, details and reason."""
        events: asyncio.Queue[E | None] = asyncio.Queue()
        failures: list[tuple[Backend, grpc.aio.AioRpcError]] = []

        async def one(backend: Backend) -> None:
            try:
                async for event in call(backend):
                    mark(event, backend)
                    await events.put(event)
            except grpc.aio.AioRpcError as exc:
                failures.append((backend, exc))
            finally:
                await events.put(None)

        tasks = [asyncio.create_task(one(b)) for b in replicas]
        try:
            pending = len(tasks)
            while pending:
                event = await events.get()
                if event is None:
                    pending -= 1
                else:
                    yield event
        finally:
            for task in tasks:
                task.cancel()  # a load goes on in the engine; a pull nobody waits for stops
        if failures:
            backend, exc = failures[0]
            await context.abort(exc.code(), f"{backend.address}: {exc.details()}", trailers(exc))

    async def LoadModel(
        self, request: control_pb2.LoadModelRequest, context: Context
    ) -> AsyncIterator[control_pb2.LoadModelResponse]:
        """Fan out to every reachable replica of the engine; events arrive as they happen."""
        async with grpc_errors(context, "LoadModel"):
            check_enums(request)
            replicas = self._replicas(request.engine, "LoadModel")

            def mark(event: control_pb2.LoadModelResponse, backend: Backend) -> None:
                event.status.backend = backend.address

            async for event in self._fan_out(
                replicas, lambda b: b.control.LoadModel(request, metadata=b.metadata), mark, context
            ):
                yield event

    async def PullModel(
        self, request: control_pb2.PullModelRequest, context: Context
    ) -> AsyncIterator[control_pb2.PullModelResponse]:
        """Fan out like a load: each replica pulls into its model roots (replicas sharing a
        volume wait for each other and find the model there)."""
        async with grpc_errors(context, "PullModel"):
            check_enums(request)
            replicas = self._replicas(request.engine, "PullModel")

            def mark(event: control_pb2.PullModelResponse, backend: Backend) -> None:
                event.progress.backend = backend.address

            async for event in self._fan_out(
                replicas, lambda b: b.control.PullModel(request, metadata=b.metadata), mark, context
            ):
                yield event

    async def UnloadModel(
        self, request: control_pb2.UnloadModelRequest, context: Context
    ) -> control_pb2.UnloadModelResponse:
        """Every replica of the engine, or (a model named) every replica holding that model."""
        async with grpc_errors(context, "UnloadModel"):
            check_enums(request)
            if request.model:
                backends = [b for b in self.pool.backends(request.engine) if b.reachable]
                replicas = [b for b in backends if model_in(b.status, request.model) is not None]
                if not replicas:
                    where = f"any {engine_name(request.engine)} backend" if request.engine else "any backend"
                    raise NotFound(f"model {request.model!r} is not loaded on {where}")
            elif request.all:
                replicas = self._replicas(request.engine, "UnloadModel")
            else:
                raise InvalidArgument("name the model to unload, or set all to unload every model")
            answers = await asyncio.gather(
                *(b.control.UnloadModel(request, timeout=_timeout(context)) for b in replicas),
                return_exceptions=True,
            )
            response = control_pb2.UnloadModelResponse()
            for backend, answer in zip(replicas, answers, strict=True):
                if isinstance(answer, grpc.aio.AioRpcError):
                    details = f"{backend.address}: {answer.details()}"
                    await context.abort(answer.code(), details, trailers(answer))
                if isinstance(answer, BaseException):
                    raise answer
                for status in answer.statuses:
                    status.backend = backend.address
                    response.statuses.append(status)
            return response
        raise AssertionError("unreachable")

    async def GetStatus(self, request: control_pb2.GetStatusRequest, context: Context) -> control_pb2.GetStatusResponse:
        async with grpc_errors(context, "GetStatus"):
            check_enums(request)
            return control_pb2.GetStatusResponse(statuses=[b.status for b in self.pool.backends(request.engine)])
        raise AssertionError("unreachable")

    async def WatchStatus(
        self, request: control_pb2.WatchStatusRequest, context: Context
    ) -> AsyncIterator[control_pb2.WatchStatusResponse]:
        async with grpc_errors(context, "WatchStatus"):
            check_enums(request)
        watcher = LatestStatuses()
        self._watchers.add(watcher)
        try:
            for backend in self.pool.backends(request.engine):
                yield control_pb2.WatchStatusResponse(status=backend.status)
            while True:
                for status in await watcher.take():
                    if request.engine in (common_pb2.ENGINE_UNSPECIFIED, status.engine):
                        yield control_pb2.WatchStatusResponse(status=status)
        finally:
            self._watchers.discard(watcher)

    async def ListModels(
        self, request: control_pb2.ListModelsRequest, context: Context
    ) -> control_pb2.ListModelsResponse:
        """The models of one reachable replica per engine (replicas share model roots)."""
        async with grpc_errors(context, "ListModels"):
            check_enums(request)
            response = control_pb2.ListModelsResponse()
            for engine in (common_pb2.ENGINE_VLLM, common_pb2.ENGINE_LLAMACPP):
                if request.engine not in (common_pb2.ENGINE_UNSPECIFIED, engine):
                    continue
                replica = next((b for b in self.pool.backends(engine) if b.reachable), None)
                if replica is not None:
                    answer = await replica.control.ListModels(request, timeout=_timeout(context))
                    response.models.extend(answer.models)
            return response
        raise AssertionError("unreachable")


class _Handlers:
    """Stands in for a server to catch the handlers the generated code would register."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.handlers = dict(handlers)


def add_to_server(servicer: RouterServicer, server: grpc.aio.Server) -> None:
    """The router's services on ``server``: as generated, but for Generate, whose responses
    go out as the bytes the backend sent (no serializer)."""
    inference = _Handlers()
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, inference)  # type: ignore[arg-type]
    inference.handlers["Generate"] = grpc.unary_stream_rpc_method_handler(
        servicer.Generate, request_deserializer=inference_pb2.GenerateRequest.FromString
    )
    name = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, inference.handlers),))
    server.add_registered_method_handlers(name, inference.handlers)
    control_pb2_grpc.add_ControlServicer_to_server(servicer, server)
