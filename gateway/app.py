"""The FastAPI application: wiring only. The routes live in one package per endpoint family
(``gateway/<family>/routes.py``), each with its request models (``protocol.py``) and, where it
makes the routes thin, a serving object holding the router connection and the settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gateway import errors
from gateway.anthropic import routes as anthropic
from gateway.chat import routes as chat
from gateway.completions import routes as completions
from gateway.connection import Router
from gateway.embeddings import routes as embeddings
from gateway.limits import ConcurrencyPerKey, RequestIdHeader, RequestRecorder, RequestSizeLimit
from gateway.models import routes as models
from gateway.ops import docs
from gateway.ops import routes as ops
from gateway.responses_api import routes as responses
from gateway.responses_api.store import ResponseStore
from gateway.settings import GatewaySettings
from gateway.tokens import routes as tokens
from switchyard.runtime import tracing
from switchyard.runtime.logs import configure_logging
from switchyard.runtime.service_token import read_token

SETTINGS_ENV = "SWITCHYARD_GATEWAY_SETTINGS_JSON"  # how a worker process gets its parent's settings


def app_from_environment() -> FastAPI:
    """The app of one of several gateway workers (``python -m gateway --workers N``)."""
    settings = GatewaySettings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_level, settings.log_format, "gateway")
    tracing.setup("switchyard-gateway", settings.otlp_traces_endpoint)  # in each worker process
    return create_app(settings)


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.router = Router(settings.router, read_token(settings.service_token_file))
        yield
        await app.state.router.channel.close()

    app = FastAPI(
        title="switchyard",
        summary="One OpenAI-compatible endpoint for vLLM and llama.cpp",
        version="0.1.0",
        lifespan=lifespan,
        responses=errors.ERROR_RESPONSES,
        docs_url=None,  # served by ops/docs.py, behind the keys
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.responses = ResponseStore(
        settings.responses_store_items, settings.responses_store_bytes, settings.responses_store_age_s
    )
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(ConcurrencyPerKey, limit=settings.max_concurrent_per_key)  # before reading bodies
    app.add_middleware(RequestRecorder)
    app.add_middleware(RequestIdHeader)  # added last: the outermost, so every answer has the id
    app.add_exception_handler(errors.ApiError, errors.handle_api_error)
    app.add_exception_handler(grpc.aio.AioRpcError, errors.handle_rpc_error)
    app.add_exception_handler(RequestValidationError, errors.handle_validation_error)
    app.add_exception_handler(HTTPException, errors.handle_http_error)
    app.add_exception_handler(Exception, unexpected)
    for router in (
        completions.router,
        chat.router,
        responses.router,
        anthropic.router,
        embeddings.router,
        models.router,
        models.admin,
        tokens.router,
        ops.router,
        docs.router,
    ):
        app.include_router(router)
    tracing.instrument_app(app)
    return app


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    return errors.json_error(errors.ApiError(500, "internal error in the gateway"), request.url.path)
