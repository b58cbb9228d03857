"""OpenAI response objects built from the contract's Delta and Finished messages.

Shapes are TypedDicts (gateway.generation.schemas): mypy checks every object built here, at no
cost per streamed chunk. One request may have several choices (n, or a list of prompts): each
comes from its own generation, and keeps its index.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import orjson

from gateway.generation.schemas import (
    ChatChoice,
    ChatChunkChoice,
    ChatDelta,
    ChatLogprobs,
    ChatMessageOut,
    Chunk,
    CompletionChoice,
    CompletionLogprobs,
    OutToolCall,
    OutToolCallDelta,
    Response,
    Usage,
)
from gateway.streaming import sse_bytes
from switchyard import request_id
from switchyard.engines import ENGINE_NAMES
from switchyard.v1 import inference_pb2 as pb

# OpenAI's values. An ABORTED generation (its model unloaded or switched under it) has none:
# the gateway answers it as an error (gateway.generation.serving).
FINISH_REASONS = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
}


@dataclass
class Accumulated:
    """One whole (non-streamed) choice gathered from its deltas."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    logprobs: list[pb.TokenLogprob] = field(default_factory=list)
    calls: dict[int, OutToolCall] = field(default_factory=dict)
    finished: pb.Finished | None = None

    def add(self, response: pb.GenerateResponse) -> None:
        if response.HasField("finished"):
            self.finished = response.finished
            return
        delta = response.delta
        self.text.append(delta.text)
        self.reasoning.append(delta.reasoning)
        self.logprobs.extend(delta.logprobs)
        for piece in delta.tool_calls:
            call = self.calls.setdefault(
                piece.index, {"id": piece.id, "type": "function", "function": {"name": piece.name, "arguments": ""}}
            )
            call["function"]["arguments"] += piece.arguments


def completion_logprobs(entries: list[pb.TokenLogprob], offset: int) -> CompletionLogprobs:
    """The legacy completions logprobs object."""
    offsets, position = [], offset
    for entry in entries:
        offsets.append(position)
        position += len(_text(entry))
    return {
        "tokens": [_text(e) for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        # logprobs 0 asks for no alternatives: OpenAI then lists the sampled token alone
        "top_logprobs": [{_text(t): t.logprob for t in e.top_logprobs} or {_text(e): e.logprob} for e in entries],
        "text_offset": offsets,
    }


def _text(entry: pb.TokenLogprob | pb.TopLogprob) -> str:
    """A token's text; for one that is part of a character (which an engine may give as empty),
    its bytes decoded with replacement, as OpenAI shows it."""
    return entry.token or entry.token_bytes.decode(errors="replace")


def _bytes(entry: pb.TokenLogprob | pb.TopLogprob) -> list[int]:
    return list(entry.token_bytes or entry.token.encode())


def chat_logprobs(entries: list[pb.TokenLogprob]) -> ChatLogprobs:
    return {
        "content": [
            {
                "token": _text(e),
                "logprob": e.logprob,
                "bytes": _bytes(e),
                "top_logprobs": [{"token": _text(t), "logprob": t.logprob, "bytes": _bytes(t)} for t in e.top_logprobs],
            }
            for e in entries
        ]
    }


def _stop_reason(finished: pb.Finished) -> str | int | None:
    if finished.HasField("stop_string"):
        return finished.stop_string
    if finished.HasField("stop_token_id"):
        return finished.stop_token_id
    return None


class ResponseBuilder:
    """Ids, timestamps and shapes of one OpenAI answer, streamed or whole."""

    def __init__(
        self,
        chat: bool,
        model: str | None,
        want_logprobs: bool,
        echo: list[str] | None = None,
        forced_calls: bool = False,
    ) -> None:
        self.chat = chat
        self.forced_calls = forced_calls  # the answer is tool calls: its first chunk's content is null
        self.id = ("chatcmpl-" if chat else "cmpl-") + (request_id.current.get() or uuid.uuid4().hex)
        self.created = int(time.time())
        self.model = model or ""
        self.engine: str | None = None
        self.want_logprobs = want_logprobs
        self.echo = echo  # completions with echo: each choice's prompt text, by choice index
        self.text_offsets: dict[int, int] = {}
        # The SSE event of a text-only chunk, split around its text: (index, model, engine) ->
        # (before, after). A streamed token then costs one JSON string encode, not a dict.
        self._text_events: dict[tuple[int, str, str | None], tuple[bytes, bytes]] = {}

    def text_event(self, index: int, text: str) -> bytes:
        """The SSE event of a chunk that carries only ``text`` (no logprobs, no tool calls):
        byte for byte what ``sse(self.chunk(...))`` gives, from a template."""
        key = (index, self.model, self.engine)
        template = self._text_events.get(key)
        if template is None:
            template = self._text_events[key] = self._text_template(index)
        return template[0] + orjson.dumps(text) + template[1]

    def _text_template(self, index: int) -> tuple[bytes, bytes]:
        marker = "\u0000switchyard-text\u0000"
        delta = pb.Delta(text=marker)
        offsets = dict(self.text_offsets)  # a template must not move the offsets
        event = sse_bytes(self.chunk(index, delta, None))
        self.text_offsets = offsets
        before, after = event.split(orjson.dumps(marker))
        return before, after

    def _learn(self, finished: pb.Finished) -> None:
        if finished.model:
            self.model = finished.model
        if finished.engine:
            self.engine = ENGINE_NAMES.get(finished.engine)

    def _finish(self, body: Response | Chunk) -> None:
        if self.engine is not None:
            body["engine"] = self.engine

    def whole(self, answers: list[Accumulated], usage: Usage) -> Response:
        """All choices in one answer, with the usage summed over them."""
        choices: list[CompletionChoice | ChatChoice] = []
        for index, answer in enumerate(answers):
            assert answer.finished is not None
            finished = answer.finished
            self._learn(finished)
            choices.append(self._choice(index, answer, finished))
        body: Response = {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }
        self._finish(body)
        return body

    def _choice(self, index: int, answer: Accumulated, finished: pb.Finished) -> CompletionChoice | ChatChoice:
        text = "".join(answer.text)
        reason = FINISH_REASONS.get(finished.reason)
        if self.chat:
            calls = _whole_calls(answer.calls, reason)
            message: ChatMessageOut = {"role": "assistant", "content": text or (None if calls else "")}
            reasoning = "".join(answer.reasoning)
            if reasoning:
                message["reasoning_content"] = message["reasoning"] = reasoning
            if calls:
                message["tool_calls"] = calls
            chat: ChatChoice = {
                "index": index,
                "message": message,
                "finish_reason": reason,
                "logprobs": chat_logprobs(answer.logprobs) if self.want_logprobs else None,
                "stop_reason": _stop_reason(finished),
            }
            return chat
        prefix = self.echo[index] if self.echo else ""
        completion: CompletionChoice = {
            "index": index,
            "text": prefix + text,
            "finish_reason": reason,
            "logprobs": completion_logprobs(answer.logprobs, len(prefix)) if self.want_logprobs else None,
            "stop_reason": _stop_reason(finished),
        }
        return completion

    def chunk(self, index: int, delta: pb.Delta | None, finished: pb.Finished | None, first: bool = False) -> Chunk:
        """One streamed chunk of choice ``index``: a delta, the first chunk (a chat's role, a
        completion's echoed prompt), or the finish."""
        reason = None
        if finished is not None:
            reason = FINISH_REASONS.get(finished.reason)
            self._learn(finished)
        entries = list(delta.logprobs) if delta is not None else []
        text = delta.text if delta is not None else ""
        choice: CompletionChoice | ChatChunkChoice
        if self.chat:
            out: ChatDelta = {}
            if first:
                out = {"role": "assistant", "content": None if self.forced_calls else ""}
            elif delta is not None:
                if delta.reasoning:
                    out["reasoning_content"] = out["reasoning"] = delta.reasoning
                if text or not (delta.tool_calls or delta.reasoning):
                    out["content"] = text
                if delta.tool_calls:
                    out["tool_calls"] = [_call_piece(piece) for piece in delta.tool_calls]
            choice = {
                "index": index,
                "delta": out,
                "finish_reason": reason,
                "logprobs": chat_logprobs(entries) if self.want_logprobs and entries else None,
            }
        else:
            if first and self.echo:
                text = self.echo[index]
            offset = self.text_offsets.get(index, 0)
            choice = {
                "index": index,
                "text": text,
                "finish_reason": reason,
                "logprobs": completion_logprobs(entries, offset) if self.want_logprobs and entries else None,
            }
            self.text_offsets[index] = offset + len(text)
        body: Chunk = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        self._finish(body)
        return body

    def usage_chunk(self, usage: Usage) -> Chunk:
        return {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        }


def _whole_calls(calls: dict[int, OutToolCall], reason: str | None) -> list[OutToolCall]:
    """The calls of a whole answer; one cut short by max_tokens (its arguments no JSON) is
    left out, as OpenAI and vLLM leave out a partial call."""
    ordered = [calls[i] for i in sorted(calls)]
    if reason != "length":
        return ordered
    whole = []
    for call in ordered:
        try:
            json.loads(call["function"]["arguments"])
        except ValueError:
            continue
        whole.append(call)
    return whole


def _call_piece(piece: pb.ToolCallDelta) -> OutToolCallDelta:
    out: OutToolCallDelta = {"index": piece.index, "function": {"arguments": piece.arguments}}
    if piece.id:
        out["id"], out["type"] = piece.id, "function"
        out["function"]["name"] = piece.name
    return out
