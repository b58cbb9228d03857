"""llama-server's chat chunks mapped to the contract: reasoning, answer text and tool-call
pieces apart, usage and finish reason from the last chunks, the SSE bytes cut anywhere."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.engine_llamacpp.chat import ChatStream, chat_body
from services.engine_llamacpp.convert import sse_batches
from switchyard.engine.params import ChatParams, GenerationParams
from switchyard.engine.structured import Function, ToolPlan
from switchyard.errors import InvalidArgument, Unavailable
from switchyard.v1 import inference_pb2 as pb

WEATHER = Function("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}}, False)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"object": "chat.completion.chunk", "choices": choices, **extra}


# The shape the pinned llama-server streams for a reasoning model calling a tool.
RECORDED = [
    chunk({"role": "assistant", "content": None}),
    chunk({"reasoning_content": "The user wants "}),
    chunk({"reasoning_content": "the weather."}),
    chunk({"content": "Let me check."}),
    chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"ci'}}
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
    chunk({}, "tool_calls"),
    chunk(usage={"prompt_tokens": 40, "completion_tokens": 30, "prompt_tokens_details": {"cached_tokens": 8}}),
]
SSE = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in RECORDED) + b"data: [DONE]\n\n"


def params(include_reasoning: bool = True, **kwargs: Any) -> GenerationParams:
    chat = ChatParams([{"role": "user", "content": "hi"}], (WEATHER,), ToolPlan("auto", (WEATHER,)), True,
                      include_reasoning=include_reasoning)  # fmt: skip
    return GenerationParams(request_id="r", chat=chat, **kwargs)


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def replay(stream: ChatStream, size: int) -> list[pb.Delta]:
    deltas = []
    async for batch in sse_batches(pieces(SSE, size)):
        deltas.extend(stream.take(batch))
    return deltas


@pytest.mark.parametrize("size", [1, 2, 7, 64, 100_000])
async def test_a_recorded_stream_maps_whatever_the_reads(size: int) -> None:
    stream = ChatStream(params())
    deltas = await replay(stream, size)
    assert "".join(d.reasoning for d in deltas) == "The user wants the weather."
    assert "".join(d.text for d in deltas) == "Let me check."
    calls = [c for d in deltas for c in d.tool_calls]
    assert calls[0].name == "get_weather" and calls[0].id.startswith("call_") and calls[0].index == 0
    assert "".join(c.arguments for c in calls) == '{"city": "Paris"}'
    assert not calls[1].id  # later pieces carry arguments only
    assert stream.finished is not None and stream.finished.reason == pb.FINISH_REASON_TOOL_CALLS
    assert stream.finished.usage == pb.Usage(prompt_tokens=40, completion_tokens=30, cached_tokens=8)
    assert "".join(stream.reasoning_text) == "The user wants the weather."


async def test_reasoning_not_asked_for_is_left_out_but_kept_for_counting() -> None:
    stream = ChatStream(params(include_reasoning=False))
    deltas = await replay(stream, 100)
    assert all(not d.reasoning for d in deltas) and stream.reasoning_text


def test_an_error_event_raises_its_status() -> None:
    with pytest.raises(Unavailable, match="exceeded"):
        ChatStream(params()).take([{"error": {"code": 500, "message": "Context size has been exceeded."}}])


def test_the_body_asks_for_usage_and_refuses_logprobs_with_tools() -> None:
    body = chat_body(params(max_tokens=5, temperature=0.0), params().chat, reasoning=True)  # type: ignore[arg-type]
    assert body["stream"] and body["stream_options"] == {"include_usage": True} and body["n_predict"] == 5
    assert body["tools"][0]["function"]["name"] == "get_weather" and body["tool_choice"] == "auto"
    assert body["reasoning_format"] == "deepseek"
    with pytest.raises(InvalidArgument, match="logprobs"):
        chat_body(params(logprobs=2), params().chat, reasoning=True)  # type: ignore[arg-type]
