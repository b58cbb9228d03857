"""Bad requests get a clear 4xx in the OpenAI error format, never a 500 or a hang."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SERVED, Stack

LLAMA = SERVED["llamacpp"]
CASES: list[tuple[str, str, Any, int, str]] = [
    # (id, path, JSON body, status, words in the message)
    ("missing-prompt", "/v1/completions", {"engine": "llamacpp"}, 400, "prompt"),
    ("prompt-wrong-type", "/v1/completions", {"prompt": {"a": 1}, "engine": "llamacpp"}, 400, "prompt"),
    ("unknown-engine", "/v1/completions", {"prompt": "hi", "engine": "tgi"}, 400, "engine"),
    ("negative-max-tokens", "/v1/completions", {"prompt": "hi", "model": LLAMA, "max_tokens": -1}, 400, "max_tokens"),
    ("huge-max-tokens", "/v1/completions", {"prompt": "hi", "model": LLAMA, "max_tokens": 10**7}, 400, "context"),
    (
        "max-tokens-overflow",
        "/v1/completions",
        {"prompt": "hi", "model": LLAMA, "max_tokens": 2**40},
        400,
        "max_tokens",
    ),
    ("temperature-high", "/v1/completions", {"prompt": "hi", "model": LLAMA, "temperature": 9}, 400, "temperature"),
    ("top-p-zero", "/v1/completions", {"prompt": "hi", "model": LLAMA, "top_p": 0}, 400, "top_p"),
    ("empty-prompt", "/v1/completions", {"prompt": "", "model": LLAMA}, 400, "prompt is empty"),
    ("negative-token-id", "/v1/completions", {"prompt": [1, -5], "model": LLAMA}, 400, "prompt"),
    ("token-out-of-vocab", "/v1/completions", {"prompt": [10**6], "model": LLAMA}, 400, "vocabulary"),
    ("n-too-many", "/v1/completions", {"prompt": "hi", "model": LLAMA, "n": 17}, 400, "n"),
    ("best-of-more-than-n", "/v1/completions", {"prompt": "hi", "model": LLAMA, "best_of": 3}, 400, "best_of"),
    ("suffix", "/v1/completions", {"prompt": "hi", "model": LLAMA, "suffix": "x"}, 400, "suffix"),
    (
        "audio-output",
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "x"}], "model": LLAMA, "modalities": ["audio"]},
        400,
        "modalities",
    ),
    (
        "tool-choice-unknown",
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "x"}],
            "model": LLAMA,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "g"}},
        },
        400,
        "'g'",
    ),
    (
        "schema-not-json-schema",
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "x"}],
            "model": LLAMA,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": []}},
        },
        400,
        "schema",
    ),
    (
        "bad-schema-keyword",
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "x"}],
            "model": LLAMA,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "s",
                    "schema": {"type": "object", "properties": {"a": {"type": "no-such-type"}}},
                },
            },
        },
        400,
        "schema",
    ),
    ("unknown-model", "/v1/completions", {"prompt": "hi", "model": "gpt-9"}, 404, "gpt-9"),
    ("logprobs-too-many", "/v1/completions", {"prompt": "hi", "model": LLAMA, "logprobs": 50}, 400, "logprobs"),
    ("empty-messages", "/v1/chat/completions", {"messages": [], "model": LLAMA}, 400, "messages is empty"),
    (
        "bad-role",
        "/v1/chat/completions",
        {"messages": [{"role": "robot", "content": "x"}], "model": LLAMA},
        400,
        "role",
    ),
    ("messages-not-list", "/v1/chat/completions", {"messages": "hi", "model": LLAMA}, 400, "messages"),
    ("load-outside-roots", "/v1/models/load", {"model_path": "/etc/passwd", "engine": "llamacpp"}, 403, "outside"),
    ("load-dotdot", "/v1/models/load", {"model_path": "../outside/secret.gguf", "engine": "llamacpp"}, 403, "outside"),
    ("load-missing", "/v1/models/load", {"model_path": "missing.gguf", "engine": "llamacpp"}, 404, "not found"),
    ("load-not-gguf", "/v1/models/load", {"model_path": "not-a-model.gguf", "engine": "llamacpp"}, 400, "not a GGUF"),
    (
        "load-wrong-options",
        "/v1/models/load",
        {"model_path": "x.gguf", "engine": "llamacpp", "dtype": "float16"},
        400,
        "dtype",
    ),
    ("load-long-path", "/v1/models/load", {"model_path": "x" * 75_000, "engine": "llamacpp"}, 400, "longer than 4096"),
    ("load-long-component", "/v1/models/load", {"model_path": "x" * 300, "engine": "vllm"}, 400, "component"),
    ("load-no-engine", "/v1/models/load", {"model_path": "switchyard-demo.gguf"}, 400, "engine"),
    ("load-path-and-name", "/v1/models/load", {"model_path": "a.gguf", "model": "a", "engine": "vllm"}, 400, "one of"),
    ("load-unknown-name", "/v1/models/load", {"model": "no-such-model"}, 404, "not under the model roots"),
    ("load-name-other-engine", "/v1/models/load", {"model": "not-a-model", "engine": "vllm"}, 404, "for vllm"),
    ("load-name-engine-options", "/v1/models/load", {"model": "switchyard-demo", "ctx_size": 64}, 400, "engine"),
    ("load-unknown-field", "/v1/models/load", {"model_path": "a", "engine": "vllm", "trust": 1}, 400, "trust"),
    ("unload-bad-engine", "/v1/models/unload", {"engine": "nope"}, 400, "engine"),
    ("tokenize-empty", "/tokenize", {"model": LLAMA}, 400, "no input"),
    ("detokenize-bad-id", "/detokenize", {"model": LLAMA, "tokens": [10**6]}, 400, "vocabulary"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request(stack: Stack, path: str, body: Any, status: int, words: str) -> None:
    answer = httpx.post(f"{stack.url}{path}", json=body, timeout=60)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status and error["type"]
    assert words.lower() in error["message"].lower(), error


def test_malformed_json_is_a_4xx(stack: Stack) -> None:
    answer = httpx.post(
        f"{stack.url}/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and "error" in answer.json()


def test_unknown_route_is_404_in_the_error_format(stack: Stack) -> None:
    answer = httpx.get(f"{stack.url}/v1/nothing-here")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == 404


def test_a_streaming_request_that_fails_before_output_is_a_plain_error(stack: Stack) -> None:
    body = {"prompt": "hi", "model": LLAMA, "max_tokens": -3, "stream": True}
    answer = httpx.post(f"{stack.url}/v1/completions", json=body, timeout=60)
    assert answer.status_code == 400 and "max_tokens" in answer.json()["error"]["message"]
