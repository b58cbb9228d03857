"""The OpenAI API: completions, chat completions, embeddings and the models list."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.auth import loaded_only, require_key
from gateway.catalogue import fetch_catalogue
from gateway.connection import Router, router_of, settings_of
from gateway.errors import ApiError
from gateway.generation import respond
from gateway.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from gateway.responses import ResponseBuilder
from gateway.schemas import EmbeddingItem, EmbeddingList
from gateway.settings import GatewaySettings
from switchyard.v1 import inference_pb2 as pb

router = APIRouter(dependencies=[Depends(require_key)])
Connection = Annotated[Router, Depends(router_of)]
Settings = Annotated[GatewaySettings, Depends(settings_of)]
EMBED_TIMEOUT_S = 600.0  # a model may be loaded first, and 2048 inputs take a while on a CPU


@router.post("/v1/completions", summary="OpenAI completions (+ engine)")
async def completions(
    body: CompletionRequest, request: Request, connection: Connection, settings: Settings
) -> Response:
    requests, prompts = body.choices(body.inputs())
    for each in requests:
        each.loaded_only = loaded_only(request)
    echo = [await _prompt_text(connection, requests[i]) for i in range(len(requests))] if body.echo else None
    builder = ResponseBuilder(chat=False, model=body.model, want_logprobs=body.logprobs is not None, echo=echo)
    return await respond(connection, requests, prompts, builder, body, settings, request, "/v1/completions")


async def _prompt_text(connection: Router, request: pb.GenerateRequest) -> str:
    """What echo repeats: the prompt, or the text of its tokens."""
    if request.WhichOneof("input") == "prompt":
        return request.prompt
    ask = pb.DetokenizeRequest(
        engine=request.engine,
        model=request.model,
        token_ids=request.prompt_token_ids.ids,
        loaded_only=request.loaded_only,
    )
    return (await connection.inference.Detokenize(ask, timeout=30)).text


@router.post("/v1/chat/completions", summary="OpenAI chat completions (+ engine)")
async def chat_completions(
    body: ChatCompletionRequest, request: Request, connection: Connection, settings: Settings
) -> Response:
    requests, prompts = body.choices(body.inputs())
    for each in requests:
        each.loaded_only = loaded_only(request)
    builder = ResponseBuilder(chat=True, model=body.model, want_logprobs=body.logprobs)
    return await respond(connection, requests, prompts, builder, body, settings, request, "/v1/chat/completions")


@router.post("/v1/embeddings", summary="OpenAI embeddings (+ engine), with a model loaded for embeddings")
async def embeddings(body: EmbeddingRequest, request: Request, connection: Connection) -> EmbeddingList:
    ask = body.to_proto()
    ask.loaded_only = loaded_only(request)
    answer = await connection.inference.Embed(ask, timeout=EMBED_TIMEOUT_S)
    data: list[EmbeddingItem] = [
        {"object": "embedding", "index": i, "embedding": _encoded(e.values, body.encoding_format)}
        for i, e in enumerate(answer.embeddings)
    ]
    tokens = answer.usage.prompt_tokens
    return {
        "object": "list",
        "data": data,
        "model": answer.model or body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encoded(values: Sequence[float], encoding: str) -> list[float] | str:
    """float: the numbers; base64: little-endian float32 bytes, as OpenAI sends them."""
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return list(values)


@router.get("/v1/models", summary="Models loaded, loading, in error and loadable")
async def models(connection: Connection) -> dict[str, Any]:
    return {"object": "list", "data": await fetch_catalogue(connection)}


@router.get("/v1/models/{model_id:path}", summary="One model")
async def model(model_id: str, connection: Connection) -> dict[str, Any]:
    found = [entry for entry in await fetch_catalogue(connection) if entry["id"] == model_id]
    if not found:
        raise ApiError(404, f"model {model_id!r} is neither loaded nor under the model roots", "model")
    return found[0]
