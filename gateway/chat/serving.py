"""Answering POST /v1/chat/completions: one chat, its choices run as generations
(``gateway.generation``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.chat.protocol import ChatCompletionRequest
from gateway.generation.responses import ResponseBuilder
from gateway.generation.serving import GenerationServing


class ChatServing(GenerationServing):
    async def create(self, body: ChatCompletionRequest, http_request: Request) -> StreamingResponse | JSONResponse:
        builder = ResponseBuilder(
            chat=True, model=body.model, want_logprobs=body.logprobs, forced_calls=body.forces_calls
        )
        return await self.respond(self.context(body, http_request, builder))
