"""POST /v1/responses on in-memory engines (which answer with their prompt, reading
``<think>`` as reasoning and ``<tool_call>`` as calls): the Response object, the stream's event
sequence, tool calls and their outputs, the store (previous_response_id, GET, DELETE, its bounds
and owners) and refusals naming the field. Every answer is also checked against the openai SDK's
types (tests/openai_conformance.py). tests/e2e/test_agent_clients.py runs the official clients
on the real engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fast.conftest import LLAMA, fast_stack

TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    {"type": "function", "name": "get_time", "parameters": {"type": "object"}},
]
CALL = '<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>'


def events(body: str) -> list[dict[str, Any]]:
    """The stream's events, each checked to be named as its type."""
    out = []
    for block in body.strip().split("\n\n"):
        name, data = block.split("\n")
        assert name == f"event: {json.loads(data[6:])['type']}"
        out.append(json.loads(data[6:]))
    return out


def kinds(output: list[dict[str, Any]]) -> list[str]:
    return [item["type"] for item in output]


async def test_a_response_whole_and_streamed_with_openais_event_sequence(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {"model": "demo", "input": "hello", "instructions": "be brief: ", "temperature": 0}
        whole = (await client.post("/v1/responses", json=body)).json()
        assert whole["status"] == "completed" and whole["object"] == "response" and whole["id"].startswith("resp_")
        [message] = whole["output"]
        assert message["type"] == "message" and message["content"][0]["text"] == "be brief: hello"
        assert whole["usage"]["output_tokens"] == 15 and whole["instructions"] == "be brief: "
        streamed = events((await client.post("/v1/responses", json={**body, "stream": True})).text)
        assert [e["type"] for e in streamed[:4]] == [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        ]  # fmt: skip
        tail = [e["type"] for e in streamed if not e["type"].endswith(".delta")][4:]
        assert tail == [
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.completed",
        ]  # fmt: skip
        assert [e["sequence_number"] for e in streamed] == list(range(len(streamed)))
        text = "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta")
        assert text == "be brief: hello"
        completed = streamed[-1]["response"]
        assert completed["output"][0]["content"][0]["text"] == text and completed["usage"]["output_tokens"] == 15


async def test_reasoning_text_and_a_call_are_items_in_order(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {"model": "demo", "input": f"<think>Time?</think>Let me check. {CALL}", "tools": TOOLS}
        whole = (await client.post("/v1/responses", json=body)).json()
        assert kinds(whole["output"]) == ["reasoning", "message", "function_call"]
        reasoning, message, call = whole["output"]
        assert reasoning["content"] == [{"type": "reasoning_text", "text": "Time?"}]
        assert message["content"][0]["text"].strip() == "Let me check."
        assert (call["name"], json.loads(call["arguments"])) == ("get_time", {"tz": "CET"})
        assert call["call_id"].startswith("call_") and whole["usage"]["output_tokens_details"]["reasoning_tokens"] == 5
        streamed = events((await client.post("/v1/responses", json={**body, "stream": True})).text)
        types = [e["type"] for e in streamed]
        assert "response.reasoning_text.delta" in types and "response.function_call_arguments.done" in types
        added = [e["item"]["type"] for e in streamed if e["type"] == "response.output_item.added"]
        assert added == ["reasoning", "message", "function_call"]
        assert kinds(streamed[-1]["response"]["output"]) == added


async def test_a_forced_call_its_output_and_a_follow_up_by_previous_response_id(fake_root: Path) -> None:
    calls = json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}])
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        first = await client.post(
            "/v1/responses", json={"model": "demo", "input": calls, "tools": TOOLS, "tool_choice": "required"}
        )
        [call] = first.json()["output"]
        assert call["type"] == "function_call" and json.loads(call["arguments"]) == {"city": "Paris"}
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": " sunny"}
        follow = {"model": "demo", "input": [output], "previous_response_id": first.json()["id"]}
        second = (await client.post("/v1/responses", json=follow)).json()
        # The engine echoes the whole chat: the first input, the call (no text), then its output.
        assert second["output"][0]["content"][0]["text"] == calls + " sunny"
        assert second["previous_response_id"] == first.json()["id"]
        again = [{"type": "message", "role": "user", "content": "Q"}, call, output]  # the same turns given whole
        whole = (await client.post("/v1/responses", json={"model": "demo", "input": again})).json()
        assert whole["output"][0]["content"][0]["text"] == "Q sunny"


async def test_a_stored_response_is_read_deleted_and_bounded(fake_root: Path) -> None:
    async with (
        fast_stack(fake_root, kinds=(LLAMA,), responses_store_items=2) as stack,
        httpx.AsyncClient(base_url=stack.url) as client,
    ):
        ids = [
            (await client.post("/v1/responses", json={"model": "demo", "input": f"#{i}"})).json()["id"]
            for i in range(3)
        ]
        assert (await client.get(f"/v1/responses/{ids[0]}")).status_code == 404  # the oldest went
        stored = (await client.get(f"/v1/responses/{ids[2]}")).json()
        assert stored["id"] == ids[2] and stored["output"][0]["content"][0]["text"] == "#2"
        deleted = (await client.delete(f"/v1/responses/{ids[2]}")).json()
        assert deleted == {"id": ids[2], "object": "response", "deleted": True}
        gone = await client.get(f"/v1/responses/{ids[2]}")
        assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found_error"
        unstored = (await client.post("/v1/responses", json={"model": "demo", "input": "x", "store": False})).json()
        assert (await client.get(f"/v1/responses/{unstored['id']}")).status_code == 404
        follow = {"model": "demo", "input": "y", "previous_response_id": ids[0]}
        missing = await client.post("/v1/responses", json=follow)
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "previous_response_id"


async def test_a_stored_response_is_its_keys_alone(fake_root: Path) -> None:
    async with (
        fast_stack(fake_root, kinds=(LLAMA,), admin_keys=["a", "b"]) as stack,
        httpx.AsyncClient(base_url=stack.url) as client,
    ):
        made = await client.post("/v1/responses", json={"model": "demo", "input": "x"}, headers={"x-api-key": "a"})
        rid = made.json()["id"]
        assert (await client.get(f"/v1/responses/{rid}", headers={"Authorization": "Bearer a"})).status_code == 200
        assert (await client.get(f"/v1/responses/{rid}", headers={"Authorization": "Bearer b"})).status_code == 404
        assert (await client.get(f"/v1/responses/{rid}")).status_code == 401


async def test_max_output_tokens_makes_the_response_incomplete(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {"model": "demo", "input": "hello world", "max_output_tokens": 3}
        whole = (await client.post("/v1/responses", json=body)).json()
        assert whole["status"] == "incomplete" and whole["incomplete_details"] == {"reason": "max_output_tokens"}
        assert whole["output"][0]["status"] == "incomplete" and whole["output"][0]["content"][0]["text"] == "hel"
        streamed = events((await client.post("/v1/responses", json={**body, "stream": True})).text)
        assert streamed[-1]["type"] == "response.incomplete"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input.0.content.0.type",
        ),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input.0.type"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"include": ["message.output_text.logprobs"]}, "include.0"),
        ({"truncation": "auto"}, "truncation"),
        ({"reasoning": {"effort": "low", "mode": "pro"}}, "reasoning.mode"),
    ],
)
async def test_what_switchyard_does_not_do_is_refused_naming_it(
    fake_root: Path, change: dict[str, Any], param: str
) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        answer = await client.post("/v1/responses", json={"model": "demo", "input": "x", **change})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == param


async def test_json_schema_output_and_the_request_echo(fake_root: Path) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {
            "model": "demo",
            "input": '{"a": 1}',
            "text": {"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}},
            "reasoning": {"effort": "xhigh", "summary": "auto"},
            "metadata": {"k": "v"},
            "tools": TOOLS[:1],
            "tool_choice": {"type": "function", "name": "get_weather"},
        }
        whole = (await client.post("/v1/responses", json={**body, "tool_choice": "none"})).json()
        assert json.loads(whole["output"][0]["content"][0]["text"]) == {"a": 1}
        assert whole["text"]["format"] == {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
        assert whole["reasoning"] == {"effort": "xhigh", "summary": "auto"} and whole["metadata"] == {"k": "v"}
        named = (await client.post("/v1/responses", json={**body, "text": None, "input": '{"city": "Oslo"}'})).json()
        assert named["tool_choice"] == {"type": "function", "name": "get_weather"}
        assert named["output"][0]["name"] == "get_weather"
