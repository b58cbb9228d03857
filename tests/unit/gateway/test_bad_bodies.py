"""Bodies JSON allows but the wire cannot carry are a 400 naming where, before any backend is
called (the gateway here has no router behind it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.settings import GatewaySettings


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(GatewaySettings(router="127.0.0.1:9"))) as test_client:
        yield test_client


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"type": "object"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"x": value}}
    return value


CASES = [
    ("empty-prompt-list", "/v1/completions", '{"prompt": [], "engine": "llamacpp"}', "prompt", "empty list"),
    ("surrogate-prompt", "/v1/completions", '{"prompt": "a\\ud800b", "engine": "llamacpp"}', "prompt", "surrogate"),
    (
        "surrogate-message",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "\\udfff"}]}',
        "messages.0.content",
        "surrogate",
    ),
    (
        "surrogate-model-path",
        "/v1/models/load",
        '{"model_path": "\\ud800", "engine": "vllm"}',
        "model_path",
        "surrogate",
    ),
    (
        "nan-in-tools",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "tools": [{"x": NaN}]}',
        "tools.0.x",
        "finite",
    ),
    (
        "infinity-in-tools",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "tools": [{"x": -Infinity}]}',
        "tools.0.x",
        "finite",
    ),
    (
        "huge-int-in-tools",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "tools": [{"x": 1' + "0" * 400 + "}]}",
        "tools.0.x",
        "too large",
    ),
]


@pytest.mark.parametrize(("path", "body", "param", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_unencodable_values_are_400_with_param(
    client: TestClient, path: str, body: str, param: str, words: str
) -> None:
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and words in error["message"]


def test_a_deeply_nested_tool_schema_is_400(client: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tools": [nested(16)]}
    answer = client.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400 and "deeper than" in answer.json()["error"]["message"]


def test_a_wrong_method_is_405_with_allow(client: TestClient) -> None:
    answer = client.get("/v1/completions")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_a_chunked_body_over_the_limit_is_413() -> None:
    app = create_app(GatewaySettings(router="127.0.0.1:9", max_request_bytes=1000))
    with TestClient(app) as small:
        chunks = (b'{"prompt": "' + b"x" * 400 for _ in range(5))  # no content-length: chunked
        answer = small.post("/v1/completions", content=chunks, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == 413


def test_the_openapi_schema_lists_the_error_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    answers = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "401", "404", "409", "413", "429", "503"} <= set(answers)
    assert "ErrorBody" in answers["400"]["content"]["application/json"]["schema"]["$ref"]
