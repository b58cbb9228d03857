"""Bad input as a careless client or an attacker sends it, over HTTP and over gRPC, on the real
stack: each gets a 4xx in the OpenAI error format or a gRPC status naming what is wrong, never a
500, INTERNAL or UNKNOWN, and the stack serves on afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from switchyard.v1 import common_pb2, control_pb2, control_pb2_grpc, inference_pb2, inference_pb2_grpc
from tests.conftest import SECOND
from tests.e2e.conftest import Stack
from tests.faults.conftest import DEMO, ENGINES, FIGURES

LLAMA_BODY = {"model": DEMO, "engine": "llamacpp"}
CHAT = {"messages": [{"role": "user", "content": "x"}], **LLAMA_BODY}


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"properties": {"x": value}}
    return value


# (id, path, raw JSON body, status, words in the message)
HTTP_CASES: list[tuple[str, str, str, int, str]] = [
    ("surrogate-prompt", "/v1/completions", '{"prompt": "\\ud800", "engine": "llamacpp"}', 400, "surrogate"),
    ("surrogate-model", "/v1/completions", '{"prompt": "x", "model": "\\udc00"}', 400, "surrogate"),
    (
        "surrogate-chat",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "\\ud83d"}]}',
        400,
        "surrogate",
    ),
    (
        "nan-temperature",
        "/v1/completions",
        json.dumps({"prompt": "x", "temperature": float("nan"), **LLAMA_BODY}),
        400,
        "finite",
    ),
    (
        "infinity-top-p",
        "/v1/completions",
        json.dumps({"prompt": "x", "top_p": float("inf"), **LLAMA_BODY}),
        400,
        "finite",
    ),
    ("nan-in-tools", "/v1/chat/completions", json.dumps({**CHAT, "tools": [{"a": float("nan")}]}), 400, "finite"),
    ("huge-int-in-tools", "/v1/chat/completions", json.dumps({**CHAT, "tools": [{"a": 10**400}]}), 400, "too large"),
    ("deep-tool-schema", "/v1/chat/completions", json.dumps({**CHAT, "tools": [deep(16)]}), 400, "deeper"),
    ("long-path-component", "/v1/models/load", json.dumps({"model_path": "a" * 256, "engine": "llamacpp"}), 400, "255"),
    ("long-path", "/v1/models/load", json.dumps({"model_path": "a/" * 40_000, "engine": "vllm"}), 400, "4096"),
    ("symlink-loop", "/v1/models/load", json.dumps({"model_path": "loop-a.gguf", "engine": "llamacpp"}), 400, "loop"),
    (
        "nul-served-name",
        "/v1/models/load",
        json.dumps({"model_path": f"{DEMO}.gguf", "engine": "llamacpp", "served_model_name": "a\u0000b"}),
        400,
        "must be 1 to 128",
    ),
    (
        "keep-alive-beyond-a-year",
        "/v1/models/load",
        json.dumps({"model_path": f"{DEMO}.gguf", "engine": "llamacpp", "keep_alive_s": 1e12}),
        400,
        "keep_alive_s",
    ),
    (
        "alias-takes-a-loaded-name",
        "/v1/models/load",
        json.dumps({"model_path": f"{SECOND}.gguf", "engine": "llamacpp", "aliases": [DEMO]}),
        400,
        "already used",
    ),
    (
        "served-name-with-a-path",
        "/v1/models/load",
        json.dumps({"model_path": f"{SECOND}.gguf", "engine": "llamacpp", "served_model_name": "../x"}),
        400,
        "served_model_name",
    ),
    (
        "alias-a-hub-id",
        "/v1/models/load",
        json.dumps({"model_path": f"{SECOND}.gguf", "engine": "llamacpp", "aliases": ["org/repo:Q4_K_M"]}),
        400,
        "aliases",
    ),
    (
        "negative-keep-alive",
        "/v1/models/load",
        json.dumps({"model_path": "x", "engine": "vllm", "keep_alive_s": -1}),
        400,
        "keep_alive",
    ),
    ("unload-unknown-model", "/v1/models/unload", json.dumps({"model": "never-loaded"}), 404, "never-loaded"),
    ("unknown-model", "/v1/completions", json.dumps({"prompt": "x", "model": "m" * 1000}), 404, "not loaded"),
    ("prompt-too-long", "/v1/completions", json.dumps({"prompt": "word " * 60_000, **LLAMA_BODY}), 400, "context"),
]
if "vllm" in ENGINES:
    HTTP_CASES.append(
        (
            "vllm-min-tokens-beyond-context",
            "/v1/chat/completions",
            json.dumps({**CHAT, "engine": "vllm", "min_tokens": 5000}),
            400,
            "min_tokens",
        )
    )


@pytest.fixture(scope="module", autouse=True)
def symlink_loop(two_model_root: Path) -> None:
    """A symlink loop under the model root: refused by name, harmless to the listing."""
    for name, target in (("loop-a.gguf", "loop-b.gguf"), ("loop-b.gguf", "loop-a.gguf")):
        if not (two_model_root / name).is_symlink():
            (two_model_root / name).symlink_to(two_model_root / target)


@pytest.mark.parametrize(
    ("path", "body", "status", "words"), [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES]
)
def test_bad_http_input(fault_stack: Stack, path: str, body: str, status: int, words: str) -> None:
    answer = httpx.post(
        f"{fault_stack.url}{path}", content=body.encode(), headers={"content-type": "application/json"}, timeout=120
    )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words.lower() in error["message"].lower(), error


def test_http_protocol_abuse(fault_stack: Stack) -> None:
    url = fault_stack.url
    chunks = (b"x" * 65536 for _ in range(40))  # 2.5 MiB, chunked: no content-length
    assert httpx.post(f"{url}/v1/completions", content=chunks, timeout=60).status_code == 413
    wrong_method = httpx.put(f"{url}/v1/completions", timeout=10)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]
    assert httpx.post(f"{url}/v1/completions", content=b"{", timeout=10).status_code == 400
    assert httpx.post(f"{url}/v1/completions", content=b"\xff\xfe", timeout=10).status_code == 400
    assert httpx.get(f"{url}/v1/models", timeout=30).status_code == 200  # the loop did not break the listing
    smallest = {"prompt": "x", "top_p": 1e-6, "max_tokens": 2, **LLAMA_BODY}
    assert httpx.post(f"{url}/v1/completions", json=smallest, timeout=60).status_code == 200
    loaded = fault_stack.engine_status("llamacpp")
    assert loaded["status"] == "loaded" and loaded["model"] == DEMO  # a refused load stopped nothing


GARBAGE = b"\x0a\xff\xff\xff\xff\x0f"


def undefined(number: int) -> Any:
    """An enum number the contract does not define (typed as Any for the stubs)."""
    return number


GrpcCall = Callable[[grpc.Channel], Any]


def generate(**kwargs: Any) -> GrpcCall:
    request = inference_pb2.GenerateRequest(**kwargs)
    return lambda ch: list(inference_pb2_grpc.InferenceStub(ch).Generate(request, timeout=120))


def raw(method: str, streaming: bool) -> GrpcCall:
    """Bytes that are no protobuf message, sent as ``method``'s request."""

    def call(channel: grpc.Channel) -> Any:
        send: Any = channel.unary_stream(method) if streaming else channel.unary_unary(method)
        answer = send(GARBAGE, timeout=30)
        return list(answer) if streaming else answer

    return call


def nested_json(levels: int) -> str:
    return '{"properties": {"x": ' * levels + "{}" + "}}" * levels


def chat_with(**chat: Any) -> GrpcCall:
    messages = chat.pop("messages", [inference_pb2.ChatMessage(role="user", content="x")])
    return generate(model=DEMO, chat=inference_pb2.ChatInput(messages=messages, **chat))


def schema_format(text: str) -> inference_pb2.ResponseFormat:
    return inference_pb2.ResponseFormat(json_schema=inference_pb2.JsonSchema(name="s", schema_json=text))


GRPC_CASES: list[tuple[str, GrpcCall, grpc.StatusCode, str]] = [
    (
        "deep-schema",
        generate(model=DEMO, prompt="x", response_format=schema_format(nested_json(2000))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "deeper",
    ),
    (
        "schema-300-levels",
        generate(model=DEMO, prompt="x", response_format=schema_format(nested_json(300))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "deeper",
    ),
    (
        "schema-int-over-64-bits",
        generate(model=DEMO, prompt="x", response_format=schema_format('{"maximum": 36893488147419103232}')),
        grpc.StatusCode.INVALID_ARGUMENT,
        "bits",
    ),
    (
        "deep-tool-parameters",
        chat_with(functions=[inference_pb2.Tool(name="f", parameters_json=nested_json(2000))]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "deeper",
    ),
    (
        "deep-tool-call-arguments",
        chat_with(
            messages=[
                inference_pb2.ChatMessage(role="user", content="x"),
                inference_pb2.ChatMessage(
                    role="assistant",
                    tool_calls=[inference_pb2.ToolCall(id="c", name="f", arguments='{"a": ' * 2000 + "1" + "}" * 2000)],
                ),
                inference_pb2.ChatMessage(role="tool", tool_call_id="c", content="y"),
            ]
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "deeper",
    ),
    ("unknown-engine", generate(engine=undefined(7), prompt="x"), grpc.StatusCode.INVALID_ARGUMENT, "engine 7"),
    (
        "huge-request-id",
        generate(request_id="r" * 100_000, model=DEMO, engine=2, prompt="x"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "request_id",
    ),
    (
        "token-out-of-vocab",
        generate(model=DEMO, engine=2, prompt_token_ids=inference_pb2.TokenIds(ids=[10**6])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vocabulary",
    ),
    ("no-input", generate(model=DEMO, engine=2), grpc.StatusCode.INVALID_ARGUMENT, "no input"),
    (
        "unknown-flash-attn",
        lambda ch: list(
            control_pb2_grpc.ControlStub(ch).LoadModel(
                control_pb2.LoadModelRequest(
                    engine=common_pb2.ENGINE_LLAMACPP,
                    model_path="x.gguf",
                    llamacpp=control_pb2.LlamacppOptions(flash_attn=undefined(9)),
                ),
                timeout=30,
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "flash_attn 9",
    ),
    (
        "nul-in-path",
        lambda ch: list(
            control_pb2_grpc.ControlStub(ch).LoadModel(
                control_pb2.LoadModelRequest(engine=common_pb2.ENGINE_LLAMACPP, model_path="a\x00b"), timeout=30
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "NUL",
    ),
    (
        "status-unknown-engine",
        lambda ch: control_pb2_grpc.ControlStub(ch).GetStatus(
            control_pb2.GetStatusRequest(engine=undefined(9)), timeout=10
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "engine 9",
    ),
    (
        "watch-unknown-engine",
        lambda ch: next(
            control_pb2_grpc.ControlStub(ch).WatchStatus(
                control_pb2.WatchStatusRequest(engine=undefined(5)), timeout=10
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "engine 5",
    ),
    (
        "malformed-generate",
        raw("/switchyard.v1.Inference/Generate", True),
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed",
    ),
    (
        "malformed-tokenize",
        raw("/switchyard.v1.Inference/Tokenize", False),
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed",
    ),
    ("malformed-embed", raw("/switchyard.v1.Inference/Embed", False), grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
    (
        "embed-unknown-engine",
        lambda ch: inference_pb2_grpc.InferenceStub(ch).Embed(
            inference_pb2.EmbedRequest(engine=undefined(7), inputs=[inference_pb2.EmbedInput(text="x")]), timeout=10
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "engine 7",
    ),
    (
        "embed-with-a-generation-model",
        lambda ch: inference_pb2_grpc.InferenceStub(ch).Embed(
            inference_pb2.EmbedRequest(
                engine=common_pb2.ENGINE_LLAMACPP, model=DEMO, inputs=[inference_pb2.EmbedInput(text="x")]
            ),
            timeout=30,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "loaded for generate",
    ),
    (
        "load-unknown-task",
        lambda ch: list(
            control_pb2_grpc.ControlStub(ch).LoadModel(
                control_pb2.LoadModelRequest(engine=common_pb2.ENGINE_LLAMACPP, model_path="x.gguf", task=undefined(5)),
                timeout=30,
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "task 5",
    ),
    ("malformed-load", raw("/switchyard.v1.Control/LoadModel", True), grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
    (
        "malformed-unload",
        raw("/switchyard.v1.Control/UnloadModel", False),
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed",
    ),
]


@pytest.mark.parametrize("target", ["router", *ENGINES])
@pytest.mark.parametrize(("call", "code", "words"), [c[1:] for c in GRPC_CASES], ids=[c[0] for c in GRPC_CASES])
def test_bad_grpc_input(fault_stack: Stack, target: str, call: GrpcCall, code: grpc.StatusCode, words: str) -> None:
    service = fault_stack.router if target == "router" else fault_stack.engines[target]
    assert service.channel is not None
    with pytest.raises(grpc.RpcError) as info:
        call(service.channel)
    if (
        target == "vllm"
        and info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        and "llamacpp" in (info.value.details() or "")
    ):
        return  # a llama.cpp request sent straight to the vLLM engine: refused for that, fine
    assert info.value.code() == code, info.value.details()
    assert words in (info.value.details() or "")


def test_the_stack_serves_after_the_abuse(fault_stack: Stack) -> None:
    for engine in ENGINES:
        body = {"model": DEMO, "engine": engine, "prompt": "hi", "max_tokens": 4}
        assert httpx.post(f"{fault_stack.url}/v1/completions", json=body, timeout=120).status_code == 200
    tried = len(HTTP_CASES) + 6 + len(GRPC_CASES) * (1 + len(ENGINES))
    FIGURES.append(f"bad inputs: {tried} tried over HTTP and gRPC, 0 answered 5xx, INTERNAL or UNKNOWN")
