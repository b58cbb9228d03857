"""POST /v1/chat/completions, OpenAI's chat completions (+ engine)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gateway.auth import require_key
from gateway.chat.protocol import ChatCompletionRequest
from gateway.chat.serving import ChatServing
from gateway.connection import serving_of

router = APIRouter(dependencies=[Depends(require_key)])
Chat = Annotated[ChatServing, Depends(serving_of(ChatServing))]


@router.post("/v1/chat/completions", summary="OpenAI chat completions (+ engine)")
async def chat_completions(body: ChatCompletionRequest, request: Request, serving: Chat) -> Response:
    return await serving.create(body, request)
