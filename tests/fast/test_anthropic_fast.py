"""POST /v1/messages and /v1/messages/count_tokens on in-memory engines (which answer with their
prompt, reading ``<think>`` as reasoning and ``<tool_call>`` as calls): thinking, text and
tool_use blocks, whole and streamed with Anthropic's events, tool results going back, stop
reasons, Anthropic's error body and x-api-key. Every answer is also checked against the
anthropic SDK's types (tests/openai_conformance.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fast.conftest import LLAMA, fast_stack
from tests.fast.test_responses_fast import events

TOOLS = [{"name": "get_time", "input_schema": {"type": "object"}}, {"name": "get_weather", "input_schema": {}}]
CALL = '<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>'


def ask(content: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "demo", "max_tokens": 200, "messages": [{"role": "user", "content": content}], **fields}


async def test_thinking_text_and_tool_use_whole_and_streamed(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = ask(f"<think>Time?</think>Let me check. {CALL}", tools=TOOLS, system="")
        whole = (await client.post("/v1/messages", json=body)).json()
        assert [b["type"] for b in whole["content"]] == ["thinking", "text", "tool_use"]
        thinking, text, use = whole["content"]
        assert thinking["thinking"] == "Time?" and text["text"].strip() == "Let me check."
        assert (use["name"], use["input"]) == ("get_time", {"tz": "CET"}) and whole["stop_reason"] == "tool_use"
        assert whole["id"].startswith("msg_") and whole["usage"]["output_tokens"] > 0
        streamed = events((await client.post("/v1/messages", json={**body, "stream": True})).text)
        types = [e["type"] for e in streamed]
        assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
        starts = [e["content_block"]["type"] for e in streamed if e["type"] == "content_block_start"]
        assert starts == ["thinking", "text", "tool_use"]
        assert types.count("content_block_stop") == 3
        deltas = [e["delta"] for e in streamed if e["type"] == "content_block_delta"]
        assert "".join(d.get("thinking", "") for d in deltas) == "Time?"
        assert json.loads("".join(d.get("partial_json", "") for d in deltas)) == {"tz": "CET"}
        assert streamed[-2]["delta"]["stop_reason"] == "tool_use"
        assert streamed[-2]["usage"]["input_tokens"] == whole["usage"]["input_tokens"]
        hidden = (
            await client.post(
                "/v1/messages",
                json={**body, "thinking": {"type": "enabled", "budget_tokens": 2048, "display": "omitted"}},
            )
        ).json()
        assert [b["type"] for b in hidden["content"]] == ["text", "tool_use"]


async def test_a_forced_tool_use_and_its_result_going_back(fake_root: Path) -> None:
    calls = json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}])
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        whole = (await client.post("/v1/messages", json=ask(calls, tools=TOOLS, tool_choice={"type": "any"}))).json()
        [use] = whole["content"]
        assert use["type"] == "tool_use" and use["input"] == {"city": "Paris"} and whole["stop_reason"] == "tool_use"
        result = {"type": "tool_result", "tool_use_id": use["id"], "content": [{"type": "text", "text": " sunny"}]}
        turns = [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": [{"type": "text", "text": " A"}, use]},
            {"role": "user", "content": [result, {"type": "text", "text": " thanks"}]},
        ]
        body = {"model": "demo", "max_tokens": 200, "messages": turns, "system": [{"type": "text", "text": "S"}]}
        again = (await client.post("/v1/messages", json=body)).json()
        # The engine echoes the chat: system, user, the assistant's text, the tool result, the user's text.
        assert again["content"] == [{"type": "text", "text": "SQ A sunny thanks"}]
        assert again["stop_reason"] == "end_turn"
        cut = (await client.post("/v1/messages", json=ask("hello", max_tokens=2, stop_sequences=["zz"]))).json()
        assert cut["stop_reason"] == "max_tokens" and cut["content"][0]["text"] == "he"


async def test_count_tokens_is_the_prompt_of_the_same_chat(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "tools": TOOLS}
        counted = await client.post("/v1/messages/count_tokens", json=body)
        assert counted.status_code == 200 and set(counted.json()) == {"input_tokens"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"model": "demo", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (ask([{"type": "image", "source": {"type": "url", "url": "x"}}]), "messages.0.content.0.type"),
        (ask("x", tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
        (ask("x", container="c"), "container"),
        (ask("x", thinking={"type": "between_tools"}), "thinking"),
        (ask([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]), "cannot be in a user message"),
    ],
)
async def test_bad_requests_get_anthropics_error_body(fake_root: Path, body: dict[str, Any], words: str) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        answer = await client.post("/v1/messages", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert words in error["error"]["message"]


async def test_keys_by_x_api_key_or_bearer_and_anthropic_errors_before_the_route(fake_root: Path) -> None:
    async with (
        fast_stack(fake_root, kinds=(LLAMA,), admin_keys=["k"], max_request_bytes=4096) as stack,
        httpx.AsyncClient(base_url=stack.url) as client,
    ):
        assert (await client.post("/v1/messages", json=ask("x"), headers={"x-api-key": "k"})).status_code == 200
        assert (
            await client.post("/v1/messages", json=ask("x"), headers={"Authorization": "Bearer k"})
        ).status_code == 200
        denied = await client.post("/v1/messages", json=ask("x"), headers={"x-api-key": "nope"})
        assert denied.status_code == 401 and denied.json()["error"]["type"] == "authentication_error"
        large = await client.post("/v1/messages", json=ask("x" * 5000), headers={"x-api-key": "k"})
        assert large.status_code == 413 and large.json()["type"] == "error"
        unknown = await client.post("/v1/messages", json=ask("x"), headers={"x-api-key": "k", "X-Request-ID": "bad id"})
        assert unknown.status_code == 400 and unknown.json()["error"]["type"] == "invalid_request_error"
        missing = await client.post("/v1/messages", json=ask("x", model="nope"), headers={"x-api-key": "k"})
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
