"""The Response object and its stream's events, built from the contract's Delta and Finished.

Output items in the order the model wrote them: a ``reasoning`` item (its text as
``reasoning_text``), a ``message`` with one ``output_text`` part, ``function_call`` items. A
stream opens an item when the model starts writing one kind (reasoning, text, a call) and closes
it when another starts, with OpenAI's events: ``response.created``, ``response.in_progress``,
``output_item.added``, ``content_part.added``, the deltas, their ``.done`` events,
``output_item.done`` and last ``response.completed`` (``response.incomplete`` when
max_output_tokens cut the answer short), every event numbered by ``sequence_number``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.chat.messages import CallFunction, ChatMessage, ToolCall
from gateway.errors import ApiError
from gateway.generation.responses import Accumulated
from gateway.generation.segments import Segment, Segmented
from gateway.responses_api.protocol import FunctionTool, ResponsesRequest
from gateway.streaming import sse_named
from switchyard.v1 import inference_pb2 as pb

Json = dict[str, Any]
Done = Callable[[Json, ChatMessage], None]  # a finished response and its assistant turn (the store's)
ERROR_CODES = {400: "invalid_prompt", 429: "rate_limit_exceeded"}


def usage_of(finished: pb.Finished) -> Json:
    usage = finished.usage
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, parts: list[Json], status: str) -> Json:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def reasoning_item(item_id: str, parts: list[Json], status: str, encrypted: str | None = None) -> Json:
    item = {"id": item_id, "type": "reasoning", "summary": [], "content": parts, "status": status}
    if encrypted is not None:  # asked for with include: the text itself, for the client to give back
        item["encrypted_content"] = encrypted
    return item


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Json:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def assistant_turn(output: list[Json]) -> ChatMessage:
    """The output as the chat's assistant turn, for a follow-up's history."""
    text = "".join(part["text"] for item in output if item["type"] == "message" for part in item["content"])
    reasoning = "".join(part["text"] for item in output if item["type"] == "reasoning" for part in item["content"])
    calls = [
        ToolCall(id=item["call_id"], function=CallFunction(name=item["name"], arguments=item["arguments"]))
        for item in output
        if item["type"] == "function_call"
    ]
    return ChatMessage(role="assistant", content=text or None, tool_calls=calls or None, reasoning_content=reasoning)


class ResponseShape(Segmented):
    """One response of POST /v1/responses, streamed or whole (``AnswerShape``)."""

    def __init__(self, body: ResponsesRequest, response_id: str, on_done: Done) -> None:
        super().__init__()
        self.body = body
        self.id = response_id
        self.model = body.model or ""
        self.created_at = int(time.time())
        self.on_done = on_done
        self.encrypted = bool(body.include)  # reasoning.encrypted_content asked for
        self.sequence = 0
        self.output: list[Json] = []

    # -- the Response object

    def response(self, status: str, usage: Json | None = None, error: Json | None = None) -> Json:
        body = self.body
        reasoning = body.reasoning
        finished = status in ("completed", "incomplete")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if finished else None,
            "status": status,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": self.model,
            "output": self.output if finished else [],
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "reasoning": {
                "effort": reasoning.effort if reasoning else None,
                "summary": reasoning.summary if reasoning else None,
            },
            "temperature": body.temperature,
            "top_p": body.top_p,
            "text": {"format": self._format()},
            "tool_choice": self._choice(),
            "tools": [t.model_dump() for t in body.tools or [] if isinstance(t, FunctionTool)],
            "truncation": "disabled",
            "background": False,
            "metadata": body.metadata or {},
            "usage": usage,
        }

    def _format(self) -> Json:
        fmt = self.body.text.format if self.body.text is not None else None
        if fmt is None or fmt.type != "json_schema":
            return {"type": fmt.type if fmt is not None else "text"}
        out: Json = {"type": "json_schema", "name": fmt.name, "schema": fmt.schema_}
        if fmt.strict is not None:
            out["strict"] = fmt.strict
        if fmt.description is not None:
            out["description"] = fmt.description
        return out

    def _choice(self) -> str | Json:
        choice = self.body.tool_choice
        if choice is None:
            return "auto"
        return choice if isinstance(choice, str) else choice.model_dump()

    def _done(self, finished: pb.Finished) -> Json:
        """The finished response (stored when asked)."""
        if finished.model:
            self.model = finished.model
        status = "incomplete" if finished.reason == pb.FINISH_REASON_LENGTH else "completed"
        response = self.response(status, usage_of(finished))
        self.on_done(response, assistant_turn(self.output))
        return response

    # -- whole

    def whole(self, answer: Accumulated) -> Json:
        assert answer.finished is not None
        status = "incomplete" if answer.finished.reason == pb.FINISH_REASON_LENGTH else "completed"
        reasoning, text = "".join(answer.reasoning), "".join(answer.text)
        if reasoning:
            parts = [{"type": "reasoning_text", "text": reasoning}]
            self.output.append(reasoning_item(self._item_id("rs"), parts, status, self._encrypted(reasoning)))
        if text or not answer.calls:
            self.output.append(message_item(self._item_id("msg"), [text_part(text)], status))
        for index in sorted(answer.calls):
            call = answer.calls[index]
            function = call["function"]
            item = call_item(self._item_id("fc"), call["id"], function["name"], function["arguments"], status)
            self.output.append(item)
        return self._done(answer.finished)

    def _item_id(self, prefix: str) -> str:
        return f"{prefix}_{len(self.output)}_{self.id.removeprefix('resp_')}"

    def _encrypted(self, reasoning: str) -> str | None:
        return reasoning if self.encrypted else None

    # -- streamed: each segment of the answer (gateway.generation.segments) is an output item

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse_named(kind, payload)

    async def stream(self, messages: AsyncIterator[pb.GenerateResponse]) -> AsyncIterator[bytes]:
        yield self._event("response.created", response=self.response("in_progress"))
        yield self._event("response.in_progress", response=self.response("in_progress"))
        async for message in messages:
            if message.HasField("delta"):
                for event in self.delta(message.delta):
                    yield event
            else:
                for event in self._finish(message.finished):
                    yield event

    def on_start(self, segment: Segment) -> list[bytes]:
        index = segment.position
        if segment.kind == "call":
            item = call_item(self._item_id("fc"), segment.call_id, segment.name, "", "in_progress")
        elif segment.kind == "text":
            item = message_item(self._item_id("msg"), [], "in_progress")
        else:
            item = reasoning_item(self._item_id("rs"), [], "in_progress")
        self.output.append(item)
        events = [self._event("response.output_item.added", output_index=index, item=item)]
        if segment.kind != "call":
            part = text_part("") if segment.kind == "text" else {"type": "reasoning_text", "text": ""}
            kind = "response.content_part.added"
            events.append(self._event(kind, item_id=item["id"], output_index=index, content_index=0, part=part))
        return events

    def on_piece(self, segment: Segment, text: str) -> bytes:
        index = segment.position
        item_id = self.output[index]["id"]
        if segment.kind == "text":
            kind = "response.output_text.delta"
            return self._event(kind, item_id=item_id, output_index=index, content_index=0, delta=text, logprobs=[])
        if segment.kind == "call":
            kind = "response.function_call_arguments.delta"
            return self._event(kind, item_id=item_id, output_index=index, delta=text)
        kind = "response.reasoning_text.delta"
        return self._event(kind, item_id=item_id, output_index=index, content_index=0, delta=text)

    def on_stop(self, segment: Segment, cut_short: bool) -> list[bytes]:
        index, text = segment.position, segment.text
        item = self.output[index]
        item["status"] = "incomplete" if cut_short else "completed"
        fields = {"item_id": item["id"], "output_index": index}
        events: list[bytes] = []
        if segment.kind == "call":
            item["arguments"] = text
            events.append(self._event("response.function_call_arguments.done", arguments=text, **fields))
        else:
            if segment.kind == "text":
                part = text_part(text)
                kind = "response.output_text.done"
                events.append(self._event(kind, content_index=0, text=text, logprobs=[], **fields))
            else:
                part = {"type": "reasoning_text", "text": text}
                if self.encrypted:
                    item["encrypted_content"] = text
                events.append(self._event("response.reasoning_text.done", content_index=0, text=text, **fields))
            events.append(self._event("response.content_part.done", content_index=0, part=part, **fields))
            item["content"] = [part]
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    def _finish(self, finished: pb.Finished) -> list[bytes]:
        cut_short = finished.reason == pb.FINISH_REASON_LENGTH
        events: list[bytes] = []
        if not self.segments:  # no output at all: an empty message, as a whole answer has
            events += self.start(Segment("text", 0))
        events += self.stop(cut_short)
        response = self._done(finished)
        events.append(self._event("response.incomplete" if cut_short else "response.completed", response=response))
        return events

    def stream_error(self, error: ApiError) -> bytes:
        """An error after the stream started: OpenAI's ``error`` event, then ``response.failed``."""
        code = ERROR_CODES.get(error.status, "server_error")
        failed = self.response("failed", error={"code": code, "message": error.message})
        return self._event("error", code=code, message=error.message, param=error.param) + self._event(
            "response.failed", response=failed
        )
