"""The request bodies of /tokenize and /detokenize and their contract requests."""

from __future__ import annotations

from pydantic import ConfigDict, model_validator

from gateway.chat.messages import ChatMessage, chat_input
from gateway.errors import ApiError
from gateway.fields import EngineName, RequestBody, TokenId, engine_kind
from switchyard.v1 import inference_pb2 as pb


class TokenizeRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    engine: EngineName | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool | None = None

    @model_validator(mode="after")
    def _one_input(self) -> TokenizeRequest:
        if self.prompt is None and self.messages is None:
            raise ApiError(400, "no input: give prompt or messages", "prompt")
        if self.prompt is not None and self.messages is not None:
            raise ApiError(400, "give prompt or messages, not both", "messages")
        return self

    def to_proto(self) -> pb.TokenizeRequest:
        request = pb.TokenizeRequest(engine=engine_kind(self.engine), model=self.model or "")
        if self.messages is not None:
            request.chat.CopyFrom(chat_input(self.messages, True))
        elif self.prompt is not None:
            request.text = self.prompt
        if self.add_special_tokens is not None:
            request.add_special_tokens = self.add_special_tokens
        return request


class DetokenizeRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    engine: EngineName | None = None
    tokens: list[TokenId]

    def to_proto(self) -> pb.DetokenizeRequest:
        return pb.DetokenizeRequest(engine=engine_kind(self.engine), model=self.model or "", token_ids=self.tokens)
