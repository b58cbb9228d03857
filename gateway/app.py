"""The FastAPI application: thin routes over the router's gRPC services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from gateway import errors
from gateway.auth import require_admin, require_key
from gateway.catalogue import model_list
from gateway.generation import stream_response, whole_response
from gateway.limits import RequestCounter, RequestSizeLimit
from gateway.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    LoadRequest,
    PullRequest,
    TokenizeRequest,
    UnloadRequest,
)
from gateway.pulls import pull_response
from gateway.responses import ResponseBuilder
from gateway.settings import GatewaySettings
from gateway.status import seed_status
from switchyard.runtime.net import CHANNEL_OPTIONS
from switchyard.v1 import control_pb2, control_pb2_grpc, inference_pb2_grpc


class Router:
    """The gateway's one connection to the router."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.inference: inference_pb2_grpc.InferenceAsyncStub = inference_pb2_grpc.InferenceStub(self.channel)
        self.control: control_pb2_grpc.ControlAsyncStub = control_pb2_grpc.ControlStub(self.channel)


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.router = Router(settings.router)
        yield
        await app.state.router.channel.close()

    app = FastAPI(
        title="switchyard",
        summary="One OpenAI-compatible endpoint for vLLM and llama.cpp",
        version="0.1.0",
        lifespan=lifespan,
        responses=errors.ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestCounter)
    app.add_exception_handler(errors.ApiError, errors.handle_api_error)
    app.add_exception_handler(grpc.aio.AioRpcError, errors.handle_rpc_error)
    app.add_exception_handler(RequestValidationError, errors.handle_validation_error)
    app.add_exception_handler(HTTPException, errors.handle_http_error)

    def router(request: Request) -> Router:
        return request.app.state.router  # type: ignore[no-any-return]

    # --- the seed API ---------------------------------------------------------------------

    @app.get("/health", summary="Liveness of the gateway")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/status", dependencies=[Depends(require_key)], summary="Per-engine state, the seed's shape")
    async def status(request: Request) -> dict[str, Any]:
        answer = await router(request).control.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
        return seed_status(list(answer.statuses))

    @app.post("/v1/models/load", dependencies=[Depends(require_admin)], summary="Load a model; blocks until loaded")
    async def load(body: LoadRequest, request: Request) -> dict[str, Any]:
        misplaced = body.other_engines_fields()
        if misplaced:
            raise errors.ApiError(400, f"options {', '.join(misplaced)} do not apply to {body.engine}", misplaced[0])
        last = None
        replicas: set[str] = set()
        async for event in router(request).control.LoadModel(body.to_proto(), timeout=settings.load_timeout_s):
            last = event
            replicas.add(event.status.backend)
        return {
            "status": "success",
            "engine": body.engine,
            "model": last.status.model if last else None,
            "model_path": last.status.model_path if last else body.model_path,
            "replicas": sorted(replicas),
        }

    @app.post("/v1/models/pull", dependencies=[Depends(require_admin)], summary="Pull a model from the hub")
    async def pull(body: PullRequest, request: Request) -> Response:
        control = router(request).control
        return await pull_response(control, body.to_proto(), body.stream, settings.pull_timeout_s, request)

    @app.post("/v1/models/unload", dependencies=[Depends(require_admin)], summary="Unload a model or an engine's")
    async def unload(body: UnloadRequest, request: Request) -> dict[str, Any]:
        if body.engine is None and body.model is None:
            raise errors.ApiError(400, "unload needs engine (every model of it) or model", "engine")
        answer = await router(request).control.UnloadModel(body.to_proto(), timeout=settings.unload_timeout_s)
        return {
            "status": "success",
            "engine": body.engine,
            "model": body.model,
            "replicas": [s.backend for s in answer.statuses],
        }

    # --- OpenAI ---------------------------------------------------------------------------

    @app.post("/v1/completions", dependencies=[Depends(require_key)], summary="OpenAI completions (+ engine)")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        builder = ResponseBuilder(chat=False, model=body.model, want_logprobs=body.logprobs is not None)
        return await _generate(request, body.to_proto(), builder, body.stream, body.include_usage, "/v1/completions")

    @app.post("/v1/chat/completions", dependencies=[Depends(require_key)], summary="OpenAI chat completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        builder = ResponseBuilder(chat=True, model=body.model, want_logprobs=body.logprobs)
        route = "/v1/chat/completions"
        return await _generate(request, body.to_proto(), builder, body.stream, body.include_usage, route)

    async def _generate(
        request: Request, proto: Any, builder: ResponseBuilder, stream: bool, include_usage: bool, route: str
    ) -> Response:
        stub = router(request).inference
        if stream:
            if not builder.model:
                builder.model = await _served_model(router(request), proto.engine)
            return await stream_response(stub, proto, builder, include_usage, settings, route)
        return await whole_response(stub, proto, builder, settings.request_timeout_s, request)

    async def _served_model(connection: Router, engine: int) -> str:
        """The model name for stream chunks when the request named none: the one loaded, if
        only one is (otherwise chunks carry the name once the Finished message tells it)."""
        answer = await connection.control.GetStatus(control_pb2.GetStatusRequest(engine=engine), timeout=10)  # type: ignore[arg-type]
        names = {s.model for s in answer.statuses if s.state == control_pb2.MODEL_STATE_LOADED and s.model}
        return names.pop() if len(names) == 1 else ""

    async def _catalogue(connection: Router) -> list[dict[str, Any]]:
        statuses = await connection.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
        available = await connection.control.ListModels(control_pb2.ListModelsRequest(), timeout=30)
        return model_list(list(statuses.statuses), list(available.models))

    @app.get("/v1/models", dependencies=[Depends(require_key)], summary="Models loaded, loading and loadable")
    async def models(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": await _catalogue(router(request))}

    @app.get("/v1/models/{model_id:path}", dependencies=[Depends(require_key)], summary="One model")
    async def model(model_id: str, request: Request) -> dict[str, Any]:
        found = [entry for entry in await _catalogue(router(request)) if entry["id"] == model_id]
        if not found:
            raise errors.ApiError(404, f"model {model_id!r} is neither loaded nor under the model roots", "model")
        return found[0]

    @app.post("/tokenize", dependencies=[Depends(require_key)], summary="Token ids of a prompt or a chat")
    async def tokenize(body: TokenizeRequest, request: Request) -> dict[str, Any]:
        answer = await router(request).inference.Tokenize(body.to_proto(), timeout=30)
        return {"tokens": list(answer.token_ids), "count": len(answer.token_ids), "max_model_len": answer.max_model_len}

    @app.post("/detokenize", dependencies=[Depends(require_key)], summary="Text of token ids")
    async def detokenize(body: DetokenizeRequest, request: Request) -> dict[str, Any]:
        answer = await router(request).inference.Detokenize(body.to_proto(), timeout=30)
        return {"prompt": answer.text}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return errors.json_error(errors.ApiError(500, "internal error in the gateway"))

    return app
