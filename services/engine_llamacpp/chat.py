"""Chat through llama-server's own chat layer (``/v1/chat/completions``).

llama-server renders the model's template, reads the model's own tool-call format (its chat
layer knows dozens: Hermes and Qwen, Llama 3, Mistral, DeepSeek, gpt-oss harmony, Qwen3-Coder
XML, ... either by name or by analysing the template), tells reasoning apart
(``reasoning_content``) and constrains a started call with a lazy grammar. The engine service
only maps its OpenAI-shaped chunks to the contract. Pure functions and a small state machine,
unit-tested on recorded chunks.

What this path cannot give, facts of the pinned llama-server (research in the issue notes):
no token ids (only the ids of the logprob entries, and none for a token that produced no text),
no logprobs with tools while streaming, and no named tool_choice (it is taken as auto). So the
engine sends here the chats whose calls are not forced and whose output is not constrained; the
rest keep the raw ``/completion`` path, where switchyard decodes under its own schema.
"""

from __future__ import annotations

import json
from typing import Any

from services.engine_llamacpp.convert import (
    error_from_response,
    logprobs_from_chunk,
    sampling_fields,
)
from switchyard.engine.params import ChatParams, GenerationParams, openai_messages
from switchyard.engine.tool_calls import new_call_id
from switchyard.errors import InvalidArgument
from switchyard.v1 import inference_pb2

FINISH_REASONS = {
    "stop": inference_pb2.FINISH_REASON_STOP,
    "length": inference_pb2.FINISH_REASON_LENGTH,
    "tool_calls": inference_pb2.FINISH_REASON_TOOL_CALLS,
}


def chat_request(chat: ChatParams, reasoning: bool) -> dict[str, Any]:
    """What llama-server needs to render and parse a chat (also for counting its tokens)."""
    body: dict[str, Any] = {"messages": openai_messages(chat.messages)}
    if chat.plan.mode == "auto" and chat.functions:
        body["tools"] = chat.tools
        body["tool_choice"] = "auto"
        body["parallel_tool_calls"] = chat.plan.parallel
    if chat.template_kwargs:
        body["chat_template_kwargs"] = chat.template_kwargs
    # llama-server's "deepseek" (its default) splits reasoning for every format it knows
    body["reasoning_format"] = "deepseek" if reasoning else "none"
    return body


def chat_body(params: GenerationParams, chat: ChatParams, reasoning: bool) -> dict[str, Any]:
    """The streaming ``/v1/chat/completions`` request for validated params."""
    body = {**chat_request(chat, reasoning), **sampling_fields(params), "stream_options": {"include_usage": True}}
    if params.logprobs is not None or params.return_token_ids:
        if "tools" in body:
            raise InvalidArgument(
                "llama-server gives no logprobs or token ids for a chat with tools while streaming; "
                "leave out logprobs (and return_token_ids), or the tools"
            )
        body["logprobs"] = True
        body["top_logprobs"] = max(params.logprobs or 0, 1)  # 0 would turn the entries off
    return body


class ChatStream:
    """The state of one streamed chat: OpenAI chunks in, the contract's deltas and Finished out."""

    def __init__(self, params: GenerationParams) -> None:
        self.params = params
        self.finished: inference_pb2.Finished | None = None
        self.reasoning_text: list[str] = []  # counted in tokens at the end
        self._reason: inference_pb2.FinishReason.ValueType = inference_pb2.FINISH_REASON_UNSPECIFIED
        self._ids: dict[int, str] = {}  # llama-server's call index -> our call id
        self.tokens_seen = False
        self.usage = inference_pb2.Usage()

    def take(self, events: list[dict[str, Any]]) -> list[inference_pb2.Delta]:
        deltas = []
        for event in events:
            if "error" in event:
                error = event["error"]
                raise error_from_response(int(error.get("code", 500)), json.dumps(event).encode())
            usage = event.get("usage")
            if usage:
                self._take_usage(usage)
            for choice in event.get("choices") or ():
                delta = self._delta(choice)
                if delta is not None:
                    deltas.append(delta)
                if choice.get("finish_reason"):
                    self._reason = FINISH_REASONS.get(choice["finish_reason"], inference_pb2.FINISH_REASON_STOP)
            if usage:  # the last chunk: usage after the finish reason
                self.finished = inference_pb2.Finished(reason=self._reason, usage=self.usage)
        return deltas

    def _take_usage(self, usage: dict[str, Any]) -> None:
        details = usage.get("prompt_tokens_details") or {}
        self.usage = inference_pb2.Usage(
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            cached_tokens=int(details.get("cached_tokens", 0)),
        )

    def _delta(self, choice: dict[str, Any]) -> inference_pb2.Delta | None:
        part = choice.get("delta") or {}
        delta = inference_pb2.Delta(text=part.get("content") or "")
        reasoning = part.get("reasoning_content") or ""
        if reasoning:
            self.reasoning_text.append(reasoning)
            if self.params.chat is None or self.params.chat.include_reasoning:
                delta.reasoning = reasoning
        for call in part.get("tool_calls") or ():
            index = int(call.get("index", 0))
            piece = delta.tool_calls.add(index=index, arguments=(call.get("function") or {}).get("arguments") or "")
            if index not in self._ids:
                self._ids[index] = new_call_id()
                piece.id, piece.name = self._ids[index], (call.get("function") or {}).get("name", "")
        entries = (choice.get("logprobs") or {}).get("content") or []
        if entries:
            if self.params.return_token_ids:
                delta.token_ids.extend(int(entry["id"]) for entry in entries)
            if self.params.logprobs is not None:
                delta.logprobs.extend(logprobs_from_chunk(entries, self.params.logprobs))
        self.tokens_seen = self.tokens_seen or bool(delta.text or reasoning or delta.tool_calls)
        if not (delta.text or delta.reasoning or delta.tool_calls or delta.token_ids or delta.logprobs):
            return None
        return delta
