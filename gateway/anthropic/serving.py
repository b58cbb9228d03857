"""Answering POST /v1/messages (one generation, ``GenerationServing.answer``, shaped as
Anthropic's message) and /v1/messages/count_tokens (the contract's Tokenize of the chat)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.anthropic.protocol import CountTokensRequest, MessagesRequest
from gateway.anthropic.shaping import MessageShape
from gateway.anthropic.translate import to_generate, to_tokenize
from gateway.auth import loaded_only
from gateway.generation.serving import GenerationServing
from switchyard import request_id


class MessagesServing(GenerationServing):
    async def create(self, body: MessagesRequest, http_request: Request) -> StreamingResponse | JSONResponse:
        request = to_generate(body)
        shape = MessageShape(f"msg_{request_id.current.get() or request_id.new_request_id()}", body.model or "")
        return await self.answer(request, http_request, body.stream, shape)

    async def count_tokens(self, body: CountTokensRequest, http_request: Request) -> dict[str, int]:
        ask = to_tokenize(body)
        ask.loaded_only = loaded_only(http_request)
        answer = await self.connection.inference.Tokenize(ask, timeout=30)
        return {"input_tokens": len(answer.token_ids)}
