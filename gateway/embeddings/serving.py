"""Answering POST /v1/embeddings: one Embed call, its vectors in OpenAI's list (floats, or
base64 of little-endian float32 as OpenAI sends them)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence

from fastapi import Request

from gateway.auth import loaded_only
from gateway.connection import Serving
from gateway.embeddings.protocol import EmbeddingItem, EmbeddingList, EmbeddingRequest
from gateway.streaming import unless_disconnected
from switchyard.v1 import inference_pb2 as pb

EMBED_TIMEOUT_S = 600.0  # a model may be loaded first, and 2048 inputs take a while on a CPU


class EmbeddingServing(Serving):
    async def create(self, body: EmbeddingRequest, http_request: Request) -> EmbeddingList:
        ask = body.to_proto()
        ask.loaded_only = loaded_only(http_request)
        # raced against the client: 2,048 inputs keep an engine busy for a minute for nobody
        call = self.connection.inference.Embed(ask, timeout=EMBED_TIMEOUT_S)
        answer: pb.EmbedResponse = await unless_disconnected(http_request, call)
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
