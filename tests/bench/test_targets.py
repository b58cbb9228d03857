"""Target parsing and the clients' stream handling, against in-memory servers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import httpx
import pytest

from bench.measure import BenchError
from bench.targets import TargetSpec, open_target, parse_target
from bench.targets.grpc_target import GrpcTarget
from bench.targets.http import LlamaServerTarget, OpenAITarget
from switchyard.v1 import common_pb2, inference_pb2, inference_pb2_grpc


def test_parse_target_names_kinds_and_options() -> None:
    assert parse_target("ours=grpc:127.0.0.1:50062,engine=llamacpp,model=m") == TargetSpec(
        "ours", "grpc", "127.0.0.1:50062", {"engine": "llamacpp", "model": "m"}
    )
    assert parse_target("openai:http://h:8080,engine=vllm", 2) == TargetSpec(
        "openai-2", "openai", "http://h:8080", {"engine": "vllm"}
    )
    assert parse_target("llama-server:http://127.0.0.1:9").name == "llama-server"
    assert str(parse_target("a=grpc:h:1,model=m")) == "a=grpc:h:1,model=m"


@pytest.mark.parametrize(
    "text",
    [
        "grpc",
        "x=ftp:h:1",
        "grpc:",
        "grpc:h:1,engine=tgi",
        "llama-server:http://h,n_predict=3",
        "openai:http://h,bad",
        "llama-server:http://h,json=object",
    ],
)
def test_parse_target_refuses_bad_specs(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)


def sse(*events: object, done: bool = False) -> bytes:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + ("data: [DONE]\n\n" if done else "")
    return body.encode()


def transport(body: bytes, seen: list[httpx.Request], status: int = 200) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handle)


async def test_openai_target_sends_exact_length_request_and_reads_usage() -> None:
    seen: list[httpx.Request] = []
    body = sse(
        {"choices": [{"text": "こん", "finish_reason": None}], "usage": None},
        {"choices": [{"text": "", "finish_reason": None}], "usage": None},  # no text: not a chunk
        {"choices": [{"text": "にちは", "finish_reason": "length"}], "usage": None},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}},
        done=True,
    )
    options = {"model": "demo", "engine": "vllm", "top_k": "1"}
    target = OpenAITarget("gw", "http://gw:8080/", options, 10, transport(body, seen))
    result = await target.stream("日本", 3)
    await target.aclose()
    assert result.completion_tokens == 3 and len(result.chunk_times) == 2
    assert str(seen[0].url) == "http://gw:8080/v1/completions"
    assert json.loads(seen[0].content) == {
        "model": "demo",
        "prompt": "日本",
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
        "temperature": 0,
        "engine": "vllm",
        "top_k": 1,
    }


async def test_openai_target_takes_a_base_url_ending_in_v1() -> None:
    seen: list[httpx.Request] = []
    body = sse({"choices": [{"text": "a"}], "usage": {"completion_tokens": 1}}, done=True)
    target = OpenAITarget("v", "http://v:8000/v1", {}, 10, transport(body, seen))
    assert (await target.stream("x", 1)).completion_tokens == 1
    assert str(seen[0].url) == "http://v:8000/v1/completions" and "model" not in json.loads(seen[0].content)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (sse({"choices": [{"text": "a"}]}, done=True), 200, "no usage"),
        (sse({"error": {"message": "engine died"}}), 200, "engine died"),
        (b'{"error": {"message": "no such model"}}', 404, "HTTP 404.*no such model"),
        (b"data: {not json\n\n", 200, "malformed"),
    ],
)
async def test_openai_target_fails_loudly(body: bytes, status: int, message: str) -> None:
    target = OpenAITarget("gw", "http://gw", {}, 10, transport(body, [], status))
    with pytest.raises(BenchError, match=message):
        await target.stream("x", 1)


@pytest.mark.parametrize(
    ("api", "path", "events", "field"),
    [
        (
            "chat",
            "/v1/chat/completions",
            [{"choices": [{"delta": {"content": "a"}}]}, {"choices": [], "usage": {"completion_tokens": 2}}],
            "messages",
        ),
        (
            "responses",
            "/v1/responses",
            [
                {"type": "response.output_text.delta", "delta": "a"},
                {"type": "response.incomplete", "response": {"usage": {"output_tokens": 2}}},
            ],
            "input",
        ),
        (
            "anthropic",
            "/v1/messages",
            [
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "a"}},
                {"type": "message_delta", "usage": {"output_tokens": 2}},
            ],
            "messages",
        ),
    ],
)
async def test_the_gateways_other_apis_are_targets_too(api: str, path: str, events: list[object], field: str) -> None:
    seen: list[httpx.Request] = []
    opened = open_target(parse_target(f"{api}:http://gw:8080,engine=vllm"), 10)
    assert isinstance(opened, OpenAITarget)
    await opened.aclose()
    target = OpenAITarget(api, "http://gw:8080", {"engine": "vllm"}, 10, transport(sse(*events), seen), api=api)
    result = await target.stream("x", 2)
    await target.aclose()
    assert result.completion_tokens == 2 and len(result.chunk_times) == 1
    sent = json.loads(seen[0].content)
    assert str(seen[0].url) == f"http://gw:8080{path}" and field in sent and sent["engine"] == "vllm"


async def test_llama_server_target_reads_the_native_stream() -> None:
    seen: list[httpx.Request] = []
    body = sse(
        {"content": "", "tokens": [], "stop": False},  # held-back UTF-8: not a chunk
        {"content": "日本", "tokens": [5], "stop": False},
        {"content": "語", "tokens": [6], "stop": False},
        {"content": "", "stop": True, "tokens_predicted": 3},
    )
    target = LlamaServerTarget("ls", "http://ls:9/", 10, transport(body, seen))
    result = await target.stream("p", 3)
    assert result.completion_tokens == 3 and len(result.chunk_times) == 2
    assert str(seen[0].url) == "http://ls:9/completion"
    assert json.loads(seen[0].content) == {
        "prompt": "p",
        "n_predict": 3,
        "ignore_eos": True,
        "stream": True,
        "temperature": 0,
    }
    no_stop = LlamaServerTarget("ls", "http://ls:9", 10, transport(sse({"content": "a", "stop": False}), []))
    with pytest.raises(BenchError, match="without a final stop"):
        await no_stop.stream("p", 3)


async def test_an_unreachable_server_is_a_bench_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    target = LlamaServerTarget("ls", "http://ls:9", 10, httpx.MockTransport(refuse))
    with pytest.raises(BenchError, match="ConnectError"):
        await target.stream("p", 3)


Context = grpc.aio.ServicerContext[object, object]


class FakeInference(inference_pb2_grpc.InferenceServicer):
    def __init__(self, answer: Callable[[inference_pb2.GenerateRequest], list[inference_pb2.GenerateResponse]]):
        self.answer = answer
        self.requests: list[inference_pb2.GenerateRequest] = []

    async def Generate(
        self, request: inference_pb2.GenerateRequest, context: Context
    ) -> AsyncIterator[inference_pb2.GenerateResponse]:
        self.requests.append(request)
        for response in self.answer(request):
            yield response

    async def Tokenize(
        self, request: inference_pb2.TokenizeRequest, context: Context
    ) -> inference_pb2.TokenizeResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")

    async def Detokenize(
        self, request: inference_pb2.DetokenizeRequest, context: Context
    ) -> inference_pb2.DetokenizeResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")

    async def Embed(self, request: inference_pb2.EmbedRequest, context: Context) -> inference_pb2.EmbedResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")


def deltas_then_finished(request: inference_pb2.GenerateRequest) -> list[inference_pb2.GenerateResponse]:
    n = request.stopping.max_tokens
    deltas = [inference_pb2.GenerateResponse(delta=inference_pb2.Delta(text="あ")) for _ in range(n)]
    usage = inference_pb2.Usage(completion_tokens=n)
    return [*deltas, inference_pb2.GenerateResponse(finished=inference_pb2.Finished(usage=usage))]


async def serve(servicer: FakeInference) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_grpc_target_asks_for_exact_greedy_output() -> None:
    servicer = FakeInference(deltas_then_finished)
    server, address = await serve(servicer)
    target = open_target(parse_target(f"e=grpc:{address},engine=llamacpp,model=demo"), 10)
    try:
        result = await target.stream("日本", 5)
    finally:
        await target.aclose()
        await server.stop(None)
    assert result.completion_tokens == 5 and len(result.chunk_times) == 5
    request = servicer.requests[0]
    assert request.prompt == "日本" and request.model == "demo" and request.engine == common_pb2.ENGINE_LLAMACPP
    assert request.stopping.max_tokens == 5 and request.stopping.ignore_eos
    assert request.sampling.HasField("temperature") and request.sampling.temperature == 0.0
    assert not request.HasField("response_format")


async def test_grpc_target_decodes_under_a_json_object_or_schema(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "string"}')
    servicer = FakeInference(deltas_then_finished)
    server, address = await serve(servicer)
    targets = [open_target(parse_target(f"e=grpc:{address},json={json}"), 10) for json in ("object", schema)]
    try:
        for target in targets:
            await target.stream("日本", 2)
    finally:
        for target in targets:
            await target.aclose()
        await server.stop(None)
    assert [r.response_format.WhichOneof("kind") for r in servicer.requests] == ["json_object", "json_schema"]
    assert servicer.requests[1].response_format.json_schema.schema_json == '{"type": "string"}'


async def test_grpc_target_fails_loudly() -> None:
    server, address = await serve(FakeInference(lambda r: deltas_then_finished(r)[:-1]))
    target = GrpcTarget("e", address, None, None, 10)
    try:
        with pytest.raises(BenchError, match="without a Finished"):
            await target.stream("x", 2)
    finally:
        await target.aclose()
        await server.stop(None)
    nobody = GrpcTarget("e", address, None, None, 5)
    with pytest.raises(BenchError, match="UNAVAILABLE"):
        await nobody.stream("x", 2)
    await nobody.aclose()
