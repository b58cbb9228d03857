"""POST /v1/messages and /v1/messages/count_tokens, Anthropic's Messages API (+ engine); keys
as ``x-api-key`` or a bearer token, errors in Anthropic's body (``gateway.errors``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.anthropic.protocol import CountTokensRequest, MessagesRequest
from gateway.anthropic.serving import MessagesServing
from gateway.auth import require_key
from gateway.connection import serving_of
from gateway.errors import ANTHROPIC_ERROR_RESPONSES

router = APIRouter(dependencies=[Depends(require_key)], responses=ANTHROPIC_ERROR_RESPONSES)
Messages = Annotated[MessagesServing, Depends(serving_of(MessagesServing))]


@router.post("/v1/messages", summary="Anthropic messages (+ engine)")
async def messages(body: MessagesRequest, request: Request, serving: Messages) -> Response:
    return await serving.create(body, request)


@router.post("/v1/messages/count_tokens", summary="Anthropic's token count of a messages request")
async def count_tokens(body: CountTokensRequest, request: Request, serving: Messages) -> dict[str, Any]:
    return await serving.count_tokens(body, request)
