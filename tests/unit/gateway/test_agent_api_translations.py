"""The Responses and Anthropic requests as the contract's chat, and the bounded response store:
pure functions, no engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.anthropic.protocol import MessagesRequest
from gateway.anthropic.translate import reasoning_effort
from gateway.anthropic.translate import to_generate as anthropic_generate
from gateway.chat.messages import ChatMessage
from gateway.errors import ApiError
from gateway.responses_api.protocol import ResponsesRequest
from gateway.responses_api.store import ResponseStore
from gateway.responses_api.translate import input_messages, to_generate
from switchyard.v1 import inference_pb2 as pb


def responses(**fields: Any) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "m", **fields})


def roles(chat: pb.ChatInput) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in chat.messages]


def test_items_become_turns_a_call_joining_the_assistant_and_reasoning_its_turn() -> None:
    items = [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "Q"}]},
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "think"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "out"},
    ]
    messages = input_messages(responses(input=items))
    assert [(m.role, m.content) for m in messages] == [
        ("developer", "rules"), ("user", "Q"), ("assistant", "A"), ("tool", "out"),
    ]  # fmt: skip
    assistant = messages[2]
    assert assistant.reasoning_content == "think" and assistant.tool_calls is not None
    assert [(c.id, c.function.name) for c in assistant.tool_calls] == [("c1", "f")]


def test_a_responses_request_as_a_generate_request() -> None:
    body = responses(
        input="hi",
        instructions="sys",
        max_output_tokens=9,
        temperature=0,
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        tool_choice={"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]},
        reasoning={"effort": "max"},
        text={"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
    )
    request = to_generate(body, input_messages(body))
    assert roles(request.chat) == [("system", "sys"), ("user", "hi")]
    assert request.stopping.max_tokens == 9 and request.sampling.HasField("temperature")
    assert request.chat.tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED and request.chat.reasoning_effort == "high"
    # forced calls have no text to shape: the format is for the turns after (the Agents SDK's way)
    assert not request.HasField("response_format")
    body = body.model_copy(update={"tool_choice": "auto"})
    request = to_generate(body, input_messages(body))
    assert json.loads(request.response_format.json_schema.schema_json) == {"type": "object"}


def test_anthropic_turns_tool_results_first_and_efforts() -> None:
    body = MessagesRequest.model_validate(
        {
            "model": "m",
            "max_tokens": 5,
            "system": [{"type": "text", "text": "S"}],
            "stop_sequences": ["END"],
            "messages": [
                {"role": "user", "content": "Q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "x"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "and"},
                        {"type": "tool_result", "tool_use_id": "t1", "content": "bad", "is_error": True},
                    ],
                },
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        }
    )
    request = anthropic_generate(body)
    assert roles(request.chat) == [
        ("system", "S"),
        ("user", "Q"),
        ("assistant", ""),
        ("tool", "Error: bad"),
        ("user", "and"),
    ]
    assistant = request.chat.messages[2]
    assert assistant.reasoning_content == "hm" and json.loads(assistant.tool_calls[0].arguments) == {"a": 1}
    assert request.chat.tool_choice.function == "f" and request.chat.parallel_tool_calls is False
    assert list(request.stopping.stop) == ["END"] and request.stopping.max_tokens == 5

    def effort(**fields: Any) -> str:
        return reasoning_effort(MessagesRequest.model_validate({"max_tokens": 1, "messages": [], **fields}))

    assert effort() == "" and effort(thinking={"type": "disabled"}) == "none"
    assert effort(thinking={"type": "enabled", "budget_tokens": 1024}) == "low"
    assert effort(thinking={"type": "enabled", "budget_tokens": 20000}) == "high"
    assert effort(thinking={"type": "adaptive"}, output_config={"effort": "medium"}) == "medium"


def test_the_store_drops_the_oldest_over_its_bounds_and_keeps_owners_apart() -> None:
    store = ResponseStore(max_items=2, max_bytes=10_000, max_age_s=3600)
    turn = [ChatMessage(role="user", content="x")]
    for i in range(3):
        store.put("a", {"id": f"r{i}"}, turn)
    assert len(store) == 2
    with pytest.raises(ApiError) as gone:
        store.get("a", "r0")
    assert gone.value.status == 404
    with pytest.raises(ApiError):
        store.get("b", "r2")  # another key's
    assert store.get("a", "r2").history == turn
    store.put("a", {"id": "big"}, [ChatMessage(role="user", content="x" * 20_000)])  # larger than all: not kept
    assert len(store) == 2 and store.delete("a", "r2") and not store.delete("a", "r2")
    old = ResponseStore(max_items=9, max_bytes=10_000, max_age_s=0.0)
    old.put("a", {"id": "r"}, turn)
    with pytest.raises(ApiError):
        old.get("a", "r")
    assert old.bytes == 0
