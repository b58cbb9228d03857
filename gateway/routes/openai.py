"""The OpenAI API: completions, chat completions and the models list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.auth import require_key
from gateway.catalogue import fetch_catalogue
from gateway.connection import Router, router_of, settings_of
from gateway.errors import ApiError
from gateway.generation import respond
from gateway.protocol import ChatCompletionRequest, CompletionRequest
from gateway.responses import ResponseBuilder
from gateway.settings import GatewaySettings

router = APIRouter(dependencies=[Depends(require_key)])
Connection = Annotated[Router, Depends(router_of)]
Settings = Annotated[GatewaySettings, Depends(settings_of)]


@router.post("/v1/completions", summary="OpenAI completions (+ engine)")
async def completions(
    body: CompletionRequest, request: Request, connection: Connection, settings: Settings
) -> Response:
    builder = ResponseBuilder(chat=False, model=body.model, want_logprobs=body.logprobs is not None)
    return await respond(connection, body.to_proto(), builder, body, settings, request, "/v1/completions")


@router.post("/v1/chat/completions", summary="OpenAI chat completions (+ engine)")
async def chat_completions(
    body: ChatCompletionRequest, request: Request, connection: Connection, settings: Settings
) -> Response:
    builder = ResponseBuilder(chat=True, model=body.model, want_logprobs=body.logprobs)
    return await respond(connection, body.to_proto(), builder, body, settings, request, "/v1/chat/completions")


@router.get("/v1/models", summary="Models loaded, loading, in error and loadable")
async def models(connection: Connection) -> dict[str, Any]:
    return {"object": "list", "data": await fetch_catalogue(connection)}


@router.get("/v1/models/{model_id:path}", summary="One model")
async def model(model_id: str, connection: Connection) -> dict[str, Any]:
    found = [entry for entry in await fetch_catalogue(connection) if entry["id"] == model_id]
    if not found:
        raise ApiError(404, f"model {model_id!r} is neither loaded nor under the model roots", "model")
    return found[0]
