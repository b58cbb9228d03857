"""The request body of POST /v1/embeddings and its Embed request, and the shape of the answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from typing_extensions import TypedDict  # pydantic (so /docs) needs this one before Python 3.12

from gateway.fields import EngineName, OpenAIBody, Prompt, TokenPrompt, engine_kind
from gateway.openai_fields import EMBEDDING_FIELDS
from switchyard import request_id
from switchyard.contract import MAX_EMBED_INPUTS
from switchyard.v1 import inference_pb2 as pb


class EmbeddingRequest(OpenAIBody):
    """POST /v1/embeddings, OpenAI's body (+ engine)."""

    openai_fields = EMBEDDING_FIELDS

    model: str
    engine: EngineName | None = None
    input: Prompt | list[Prompt] | TokenPrompt | list[TokenPrompt] = Field(
        description=f"a string, strings, token ids or lists of token ids (at most {MAX_EMBED_INPUTS} inputs)"
    )
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None

    def to_proto(self) -> pb.EmbedRequest:
        request = pb.EmbedRequest(engine=engine_kind(self.engine), model=self.model)
        request.request_id = request_id.current.get()
        value = self.input
        items: list[Any] = [value] if isinstance(value, str) or (value and isinstance(value[0], int)) else list(value)
        for item in items:
            if isinstance(item, str):
                request.inputs.add(text=item)
            else:
                request.inputs.add(tokens=pb.TokenIds(ids=item))
        return request


class EmbeddingItem(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # float32 little-endian bytes in base64 when asked for


class EmbeddingUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(TypedDict):
    """The answer of /v1/embeddings."""

    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
