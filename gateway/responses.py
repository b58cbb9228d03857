"""OpenAI response objects built from the contract's Delta and Finished messages."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.protocol import FINISH_REASONS
from switchyard.engines import ENGINE_NAMES
from switchyard.v1 import inference_pb2 as pb


@dataclass
class Accumulated:
    """A whole (non-streamed) answer gathered from its deltas."""

    text: list[str] = field(default_factory=list)
    logprobs: list[pb.TokenLogprob] = field(default_factory=list)
    finished: pb.Finished | None = None

    def add(self, response: pb.GenerateResponse) -> None:
        if response.HasField("delta"):
            self.text.append(response.delta.text)
            self.logprobs.extend(response.delta.logprobs)
        else:
            self.finished = response.finished


def usage_json(finished: pb.Finished) -> dict[str, Any]:
    usage = finished.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def completion_logprobs(entries: list[pb.TokenLogprob], offset: int) -> dict[str, Any]:
    """The legacy completions logprobs object."""
    offsets, position = [], offset
    for entry in entries:
        offsets.append(position)
        position += len(entry.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [{t.token: t.logprob for t in e.top_logprobs} for e in entries],
        "text_offset": offsets,
    }


def chat_logprobs(entries: list[pb.TokenLogprob]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": e.token,
                "logprob": e.logprob,
                "bytes": list(e.token.encode()),
                "top_logprobs": [
                    {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode())} for t in e.top_logprobs
                ],
            }
            for e in entries
        ]
    }


class ResponseBuilder:
    """Ids, timestamps and shapes of one OpenAI answer, streamed or whole."""

    def __init__(self, chat: bool, model: str | None, want_logprobs: bool) -> None:
        self.chat = chat
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model or ""
        self.want_logprobs = want_logprobs
        self.text_offset = 0

    def _base(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def _extra(self, finished: pb.Finished) -> dict[str, Any]:
        if finished.model:
            self.model = finished.model
        return {"engine": ENGINE_NAMES.get(finished.engine)} if finished.engine else {}

    def whole(self, answer: Accumulated) -> dict[str, Any]:
        assert answer.finished is not None
        finished = answer.finished
        extra = self._extra(finished)
        text = "".join(answer.text)
        choice: dict[str, Any] = {"index": 0, "finish_reason": FINISH_REASONS.get(finished.reason), "logprobs": None}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
            if self.want_logprobs:
                choice["logprobs"] = chat_logprobs(answer.logprobs)
        else:
            choice["text"] = text
            if self.want_logprobs:
                choice["logprobs"] = completion_logprobs(answer.logprobs, 0)
        if finished.HasField("stop_string"):
            choice["stop_reason"] = finished.stop_string
        elif finished.HasField("stop_token_id"):
            choice["stop_reason"] = finished.stop_token_id
        body = self._base("chat.completion" if self.chat else "text_completion")
        return {**body, "choices": [choice], "usage": usage_json(finished), **extra}

    def chunk(self, delta: pb.Delta | None, finished: pb.Finished | None, first: bool = False) -> dict[str, Any]:
        """One streamed chunk: a delta, the first (role) chunk of a chat, or the finish."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": None, "logprobs": None}
        extra: dict[str, Any] = {}
        if finished is not None:
            choice["finish_reason"] = FINISH_REASONS.get(finished.reason)
            extra = self._extra(finished)
        entries = list(delta.logprobs) if delta is not None else []
        text = delta.text if delta is not None else ""
        if self.chat:
            choice["delta"] = {"role": "assistant", "content": ""} if first else ({"content": text} if delta else {})
            if self.want_logprobs and entries:
                choice["logprobs"] = chat_logprobs(entries)
        else:
            choice["text"] = text
            if self.want_logprobs and entries:
                choice["logprobs"] = completion_logprobs(entries, self.text_offset)
            self.text_offset += len(text)
        return {**self._base("chat.completion.chunk" if self.chat else "text_completion"), "choices": [choice], **extra}

    def usage_chunk(self, finished: pb.Finished) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self._base(obj), "choices": [], "usage": usage_json(finished)}
