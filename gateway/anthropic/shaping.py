"""Anthropic's message and its stream's events, built from the contract's Delta and Finished.

Content blocks in the order the model wrote them: ``thinking`` (signature empty: nothing is
signed here), ``text``, ``tool_use`` (its input the parsed arguments). A stream is
``message_start``, per block ``content_block_start``, its deltas (``thinking_delta``,
``text_delta``, ``input_json_delta``) and ``content_block_stop``, then ``message_delta`` with
the stop reason and the usage, and ``message_stop``. The prompt's tokens are known only at the
end: ``message_start`` counts 0 and ``message_delta`` gives them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from gateway.errors import ApiError, anthropic_error_body
from gateway.generation.responses import Accumulated
from gateway.generation.segments import Segment, Segmented
from gateway.streaming import sse_named
from switchyard.v1 import inference_pb2 as pb

Json = dict[str, Any]
DELTAS = {
    "reasoning": ("thinking_delta", "thinking"),
    "text": ("text_delta", "text"),
    "call": ("input_json_delta", "partial_json"),
}


def stop_reason(finished: pb.Finished) -> tuple[str, str | None]:
    """Anthropic's stop_reason and stop_sequence."""
    if finished.reason == pb.FINISH_REASON_LENGTH:
        return "max_tokens", None
    if finished.reason == pb.FINISH_REASON_TOOL_CALLS:
        return "tool_use", None
    if finished.HasField("stop_string"):
        return "stop_sequence", finished.stop_string
    return "end_turn", None


def usage_of(finished: pb.Finished) -> Json:
    usage = finished.usage
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def tool_input(arguments: str) -> Json | None:
    """A call's arguments as its input; None when they are no JSON object (cut short)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def thinking_block(text: str) -> Json:
    return {"type": "thinking", "thinking": text, "signature": ""}


def tool_use_block(call_id: str, name: str, arguments: Json) -> Json:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


class MessageShape(Segmented):
    """One answer of POST /v1/messages, streamed or whole (``AnswerShape``)."""

    def __init__(self, message_id: str, model: str) -> None:
        super().__init__()
        self.id = message_id
        self.model = model

    def message(self, content: list[Json], finished: pb.Finished | None) -> Json:
        reason, sequence = stop_reason(finished) if finished is not None else (None, None)
        usage = usage_of(finished) if finished is not None else {"input_tokens": 0, "output_tokens": 0}
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": usage,
        }

    def whole(self, answer: Accumulated) -> Json:
        assert answer.finished is not None
        if answer.finished.model:
            self.model = answer.finished.model
        content: list[Json] = []
        reasoning, text = "".join(answer.reasoning), "".join(answer.text)
        if reasoning:
            content.append(thinking_block(reasoning))
        if text:
            content.append({"type": "text", "text": text})
        for index in sorted(answer.calls):
            call = answer.calls[index]
            arguments = tool_input(call["function"]["arguments"])
            if arguments is not None:  # a call cut short by max_tokens is left out
                content.append(tool_use_block(call["id"], call["function"]["name"], arguments))
        return self.message(content, answer.finished)

    # -- streamed: each segment of the answer (gateway.generation.segments) is a content block

    async def stream(self, messages: AsyncIterator[pb.GenerateResponse]) -> AsyncIterator[bytes]:
        yield sse_named("message_start", {"type": "message_start", "message": self.message([], None)})
        async for message in messages:
            if message.HasField("delta"):
                for event in self.delta(message.delta):
                    yield event
            else:
                for event in self._finish(message.finished):
                    yield event

    def on_start(self, segment: Segment) -> list[bytes]:
        if segment.kind == "call":
            block = tool_use_block(segment.call_id, segment.name, {})
        elif segment.kind == "text":
            block = {"type": "text", "text": ""}
        else:
            block = thinking_block("")
        event = {"type": "content_block_start", "index": segment.position, "content_block": block}
        return [sse_named("content_block_start", event)]

    def on_piece(self, segment: Segment, text: str) -> bytes:
        kind, name = DELTAS[segment.kind]
        event = {"type": "content_block_delta", "index": segment.position, "delta": {"type": kind, name: text}}
        return sse_named("content_block_delta", event)

    def on_stop(self, segment: Segment, cut_short: bool) -> list[bytes]:
        return [sse_named("content_block_stop", {"type": "content_block_stop", "index": segment.position})]

    def _finish(self, finished: pb.Finished) -> list[bytes]:
        if finished.model:
            self.model = finished.model
        events = self.stop(finished.reason == pb.FINISH_REASON_LENGTH)
        reason, sequence = stop_reason(finished)
        delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence}}
        events.append(sse_named("message_delta", {**delta, "usage": usage_of(finished)}))
        events.append(sse_named("message_stop", {"type": "message_stop"}))
        return events

    def stream_error(self, error: ApiError) -> bytes:
        """An error after the stream started: Anthropic's ``error`` event."""
        return sse_named("error", anthropic_error_body(error.status, error.message))
