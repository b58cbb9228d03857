"""The conformance check itself can fail: unknown fields, wrong types, missing fields and a
bad error body are caught; what OpenAI and switchyard send passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.openai_conformance import NotConformant, check

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "reasoning_content": "r", "reasoning": "r"},
            "finish_reason": "stop",
            "logprobs": None,
            "stop_reason": None,
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    "engine": "vllm",
}


def whole(body: Any, status: int = 200) -> None:
    check("/v1/chat/completions", status, "application/json", json.dumps(body).encode())


def test_a_good_answer_and_error_pass() -> None:
    whole(CHAT)
    whole({"error": {"message": "m", "type": "invalid_request_error", "param": "n", "code": 400}}, 400)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b.update(surprise=1), "does not define"),
        (lambda b: b["choices"][0]["message"].update(thoughts="x"), "does not define"),
        (lambda b: b.update(created="1"), "created"),
        (lambda b: b.pop("model"), "model"),
        (lambda b: b["choices"][0].update(finish_reason="done"), "finish_reason"),
    ],
)
def test_what_is_not_openais_shape_fails(change: Any, words: str) -> None:
    body = json.loads(json.dumps(CHAT))
    change(body)
    with pytest.raises(NotConformant, match=words):
        whole(body)


def test_a_bad_error_body_and_a_bad_event_fail() -> None:
    with pytest.raises(NotConformant):
        whole({"detail": "not found"}, 404)
    event = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0}]}
    with pytest.raises(NotConformant, match="delta"):
        check("/v1/chat/completions", 200, "text/event-stream", f"data: {json.dumps(event)}\n\n".encode())
