"""The OpenAI surface on in-memory engines (which answer with their prompt): fields refused
rather than dropped, several choices and prompts, echo, and tool calls shaped out of the
answer text, whole and streamed. tests/e2e/test_structured_outputs.py runs the same on the
real engines."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fast.conftest import LLAMA, fast_stack
from tests.fast.test_stack_fast import sse_data

CALLS = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


def sse_chunks(body: str) -> list[dict[str, Any]]:
    data = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def chat(content: str, **fields: Any) -> dict[str, Any]:
    return {"model": "demo", "messages": [{"role": "user", "content": content}], "max_tokens": 500, **fields}


def streamed_calls(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls put back together from their deltas, as the openai SDK does."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for piece in choice["delta"].get("tool_calls", []):
                call = calls.setdefault(piece["index"], {"id": piece.get("id"), "name": "", "arguments": ""})
                call["name"] += piece.get("function", {}).get("name", "")
                call["arguments"] += piece.get("function", {}).get("arguments", "")
    return [calls[i] for i in sorted(calls)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("store", True),
        ("prediction", {"type": "content", "content": "x"}),
        ("functions", [{"name": "f"}]),
        ("guided_json", {"type": "object"}),
        ("use_beam_search", True),
    ],
)
async def test_a_field_switchyard_does_not_honour_is_refused_by_name(fake_root: Path, field: str, value: Any) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        answer = await client.post("/v1/chat/completions", json=chat("hi", **{field: value}))
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == field and answer.json()["error"]["type"] == "invalid_request_error"


async def test_fields_without_effect_and_vendor_extras_are_accepted(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        extras = {"user": "u1", "metadata": {"k": "v"}, "store": False, "modalities": ["text"], "some_extra": 1}
        answer = await client.post("/v1/chat/completions", json=chat("hi", **extras))
        assert answer.status_code == 200, answer.text
        image = chat("hi")
        image["messages"][0]["content"] = [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
        refused = await client.post("/v1/chat/completions", json=image)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "messages.0.content.0.type"


async def test_several_prompts_and_choices_come_back_in_order(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {"model": "demo", "prompt": ["ab", "cde"], "n": 2, "max_tokens": 8, "echo": True}
        whole = (await client.post("/v1/completions", json=body)).json()
        assert [(c["index"], c["text"]) for c in whole["choices"]] == [
            (0, "abab"), (1, "abab"), (2, "cdecde"), (3, "cdecde"),
        ]  # fmt: skip
        usage = whole["usage"]  # each prompt counted once, however many choices it has (as OpenAI does)
        assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (5, 10, 15)
        chunks = sse_chunks((await client.post("/v1/completions", json={**body, "stream": True})).text)
        texts: dict[int, str] = {}
        for chunk in chunks:
            for choice in chunk["choices"]:
                texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
        assert texts == {0: "abab", 1: "abab", 2: "cdecde", 3: "cdecde"}
        too_many = await client.post("/v1/completions", json={**body, "n": 17})
        assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "n"


async def test_a_forced_tool_choice_answers_with_calls(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = chat(json.dumps(CALLS), tools=TOOLS, tool_choice="required")
        whole = (await client.post("/v1/chat/completions", json=body)).json()
        choice = whole["choices"][0]
        assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
        [call] = choice["message"]["tool_calls"]
        assert call["type"] == "function" and call["id"].startswith("call_")
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
        chunks = sse_chunks((await client.post("/v1/chat/completions", json={**body, "stream": True})).text)
        [streamed] = streamed_calls(chunks)
        assert streamed["name"] == "get_weather" and json.loads(streamed["arguments"]) == {"city": "Paris"}
        assert streamed["id"] and chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        named = chat('{"tz": "UTC"}', tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_time"}})
        [call] = (await client.post("/v1/chat/completions", json=named)).json()["choices"][0]["message"]["tool_calls"]
        assert call["function"]["name"] == "get_time" and json.loads(call["function"]["arguments"]) == {"tz": "UTC"}
        unknown = chat("x", tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}})
        answer = await client.post("/v1/chat/completions", json=unknown)
        assert answer.status_code == 400 and "nope" in answer.json()["error"]["message"]


async def test_reasoning_and_calls_an_engine_read_are_answered_apart(fake_root: Path) -> None:
    """The in-memory engine parses as the real ones do (tests/fake_engine.py): the gateway
    answers reasoning, text and calls in OpenAI's fields (and vLLM's), whole and streamed."""
    text = '<think>Time?</think>Let me check. <tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>'
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        whole = (await client.post("/v1/chat/completions", json=chat(text, tools=TOOLS))).json()
        message = whole["choices"][0]["message"]
        assert message["reasoning_content"] == message["reasoning"] == "Time?"
        assert message["content"].strip() == "Let me check."
        assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_time"]
        assert whole["choices"][0]["finish_reason"] == "tool_calls"
        assert whole["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}
        streamed = await client.post("/v1/chat/completions", json={**chat(text, tools=TOOLS), "stream": True})
        deltas = [json.loads(d)["choices"][0]["delta"] for d in sse_data(streamed.text)[:-1]]
        assert "".join(d.get("reasoning_content", "") for d in deltas) == "Time?"
        assert "".join(d.get("content") or "" for d in deltas).strip() == "Let me check."
        assert [c["function"]["name"] for d in deltas for c in d.get("tool_calls", [])] == ["get_time"]
        plain = (await client.post("/v1/chat/completions", json=chat(text, reasoning_effort="low"))).json()
        assert plain["choices"][0]["message"]["content"].endswith("</tool_call>")  # no tools: text is text
        hidden = (await client.post("/v1/chat/completions", json=chat(text, include_reasoning=False))).json()
        assert "reasoning_content" not in hidden["choices"][0]["message"]


async def test_embeddings_float_and_base64_and_their_refusals(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {"model": "other", "input": ["ab", "ba", "abc"]}
        answer = await client.post("/v1/embeddings", json=body)  # loads "other" for embeddings on demand
        assert answer.status_code == 200, answer.text
        whole = answer.json()
        assert [d["index"] for d in whole["data"]] == [0, 1, 2] and whole["model"] == "other"
        assert whole["data"][0]["embedding"] == whole["data"][1]["embedding"]  # same bytes, same vector
        assert whole["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
        tokens = (await client.post("/v1/embeddings", json={**body, "input": [[97, 98, 99]]})).json()
        assert tokens["data"][0]["embedding"] == whole["data"][2]["embedding"]  # "abc" is bytes 97, 98, 99
        packed = (await client.post("/v1/embeddings", json={**body, "encoding_format": "base64"})).json()
        decoded = struct.unpack("<4f", base64.b64decode(packed["data"][2]["embedding"]))
        assert decoded == pytest.approx(whole["data"][2]["embedding"])
        dimensions = await client.post("/v1/embeddings", json={**body, "dimensions": 2})
        assert dimensions.status_code == 400 and dimensions.json()["error"]["param"] == "dimensions"
        generate = await client.post("/v1/completions", json={"model": "other", "prompt": "x"})
        assert generate.status_code == 409 and "loaded for embed" in generate.json()["error"]["message"]
        assert (await client.post("/v1/completions", json={"model": "demo", "prompt": "x"})).status_code == 200
        embed = await client.post("/v1/embeddings", json={**body, "model": "demo"})
        assert embed.status_code == 409 and "loaded for generate" in embed.json()["error"]["message"]
        empty = await client.post("/v1/embeddings", json={**body, "input": []})
        assert empty.status_code == 400


async def test_tokenize_takes_a_prompt_or_messages_not_both(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        both = {"model": "demo", "prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}
        answer = await client.post("/tokenize", json=both)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "messages"
        assert (await client.post("/tokenize", json={"model": "demo"})).status_code == 400
        assert (await client.post("/tokenize", json={"model": "demo", "prompt": "hi"})).status_code == 200
