"""Answering POST /v1/completions: its choices run as generations (``gateway.generation``),
with ``echo`` putting each prompt's text in front."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.completions.protocol import CompletionRequest
from gateway.generation.responses import ResponseBuilder
from gateway.generation.serving import GenerationServing
from switchyard.v1 import inference_pb2 as pb


class CompletionServing(GenerationServing):
    async def create(self, body: CompletionRequest, http_request: Request) -> StreamingResponse | JSONResponse:
        builder = ResponseBuilder(chat=False, model=body.model, want_logprobs=body.logprobs is not None)
        ctx = self.context(body, http_request, builder)
        if body.echo:
            builder.echo = [await self._prompt_text(request) for request in ctx.requests]
        return await self.respond(ctx)

    async def _prompt_text(self, request: pb.GenerateRequest) -> str:
        """What echo repeats: the prompt, or the text of its tokens."""
        if request.WhichOneof("input") == "prompt":
            return request.prompt
        ask = pb.DetokenizeRequest(
            engine=request.engine,
            model=request.model,
            token_ids=request.prompt_token_ids.ids,
            loaded_only=request.loaded_only,
        )
        return (await self.connection.inference.Detokenize(ask, timeout=30)).text
