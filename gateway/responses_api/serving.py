"""Answering POST /v1/responses: the request as a chat (with the stored conversation a
``previous_response_id`` continues), run as one generation (``GenerationServing.answer``),
shaped as a Response and stored when asked."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.auth import owner
from gateway.chat.messages import ChatMessage
from gateway.generation.serving import GenerationServing
from gateway.responses_api.protocol import ResponsesRequest
from gateway.responses_api.shaping import ResponseShape
from gateway.responses_api.store import ResponseStore
from gateway.responses_api.translate import input_messages, to_generate


class ResponsesServing(GenerationServing):
    async def create(
        self, body: ResponsesRequest, http_request: Request, store: ResponseStore
    ) -> StreamingResponse | JSONResponse:
        caller = owner(http_request)
        previous: list[ChatMessage] = []
        if body.previous_response_id is not None:
            previous = store.get(caller, body.previous_response_id, "previous_response_id").history
        history = [*previous, *input_messages(body)]
        request = to_generate(body, history)

        def done(response: dict[str, Any], turn: ChatMessage) -> None:
            if body.store:
                store.put(caller, response, [*history, turn])

        shape = ResponseShape(body, f"resp_{uuid.uuid4().hex}", done)
        return await self.answer(request, http_request, body.stream, shape)
