"""The gateway, router and engine servicer together on in-memory engines: streaming, whole
answers, errors, disconnects and the router's retry, in seconds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from switchyard.v1 import control_pb2
from tests.fast.conftest import LLAMA, VLLM, fast_stack
from tests.helpers import until


def sse_data(body: str) -> list[str]:
    return [line[6:] for line in body.splitlines() if line.startswith("data: ")]


async def test_a_completion_whole_and_streamed(fake_root: Path) -> None:
    async with fast_stack(fake_root) as stack, httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        body = {"model": "demo", "engine": "llamacpp", "prompt": "hello", "max_tokens": 5}
        whole = (await client.post("/v1/completions", json=body)).json()
        assert whole["choices"][0]["text"] == "hello" and whole["model"] == "demo"
        assert whole["usage"]["completion_tokens"] == 5 and whole["engine"] == "llamacpp"
        streamed = await client.post("/v1/completions", json={**body, "stream": True})
        data = sse_data(streamed.text)
        assert data[-1] == "[DONE]"
        chunks = [json.loads(d) for d in data[:-1]]
        assert "".join(c["choices"][0]["text"] for c in chunks) == "hello"
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_a_chat_stream_starts_with_the_role(fake_root: Path) -> None:
    async with fast_stack(fake_root) as stack, httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        body = {"model": "demo", "engine": "vllm", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        chunks = [json.loads(d) for d in sse_data((await client.post("/v1/chat/completions", json=body)).text)[:-1]]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "hi"


async def test_errors_take_the_openai_shape(fake_root: Path) -> None:
    async with fast_stack(fake_root) as stack, httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        unknown = await client.post("/v1/completions", json={"model": "nope", "prompt": "x"})
        assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
        both = await client.post("/v1/completions", json={"model": "demo", "prompt": "x"})
        assert both.status_code == 200 and both.json()["engine"] == "llamacpp"  # the engine order decides
        empty = await client.post("/v1/completions", json={"model": "demo", "engine": "vllm", "prompt": ""})
        assert empty.status_code == 400 and "prompt is empty" in empty.json()["error"]["message"]


async def test_a_client_that_leaves_mid_stream_stops_the_engine(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack:
        engine = stack.engine(LLAMA)
        engine.adapter.token_delay_s = 0.01
        body = {"model": "demo", "prompt": "x" * 1000, "max_tokens": 1000, "stream": True}
        async with (
            httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
            client.stream("POST", "/v1/completions", json=body) as answer,
        ):
            assert answer.status_code == 200
            async for line in answer.aiter_lines():
                if line.startswith("data: "):
                    break
        async with asyncio.timeout(10):
            while engine.adapter.cancelled == 0:  # noqa: ASYNC110 (a counter the engine bumps)
                await asyncio.sleep(0.01)
        slot = engine.host.find("demo")
        assert slot is not None and slot.in_flight == 0


async def test_the_router_retries_a_backend_that_fails_before_its_first_token(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(VLLM, VLLM)) as stack, httpx.AsyncClient(base_url=stack.url) as client:
        body = {"model": "demo", "prompt": "abc", "max_tokens": 3}
        assert (await client.post("/v1/completions", json=body, timeout=30)).status_code == 200  # loads on one
        for engine in stack.engines:  # load it on the other too, then make one of them fail
            async with engine.host.request("demo"):
                pass
        stack.engines[0].adapter.fail_before_first = True
        answers = [await client.post("/v1/completions", json=body, timeout=30) for _ in range(6)]
        assert all(a.status_code == 200 and a.json()["choices"][0]["text"] == "abc" for a in answers)


async def test_a_stream_that_names_no_model_is_labelled_from_its_headers(fake_root: Path) -> None:
    """The engine's initial metadata (passed on by the router with the raw stream) names the
    model from the first chunk on, without a status call."""
    async with (
        fast_stack(fake_root, kinds=(LLAMA,)) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
    ):
        await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "max_tokens": 1})  # loads it
        body = {"engine": "llamacpp", "prompt": "hello", "max_tokens": 5, "stream": True}
        chunks = [json.loads(d) for d in sse_data((await client.post("/v1/completions", json=body)).text)[:-1]]
        assert [c["model"] for c in chunks] == ["demo"] * len(chunks)
        assert "".join(c["choices"][0]["text"] for c in chunks) == "hello"


async def test_readiness_needs_the_router_and_a_loaded_model(fake_root: Path) -> None:
    async with (
        fast_stack(fake_root, kinds=(LLAMA,)) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
    ):
        empty = await client.get("/ready")
        assert empty.status_code == 503 and empty.json()["error"]["message"] == "not ready: no model is loaded"
        assert (await client.get("/health")).status_code == 200  # liveness stays up
        await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "max_tokens": 1})  # loads it
        loaded = control_pb2.MODEL_STATE_LOADED
        await until(lambda: any(m.state == loaded for b in stack.pool.backends() for m in b.status.models))
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "models": ["demo"]}
        await stack.router_server.stop(0)
        gone = await client.get("/ready")
        assert gone.status_code == 503 and "the router does not answer (UNAVAILABLE)" in gone.json()["error"]["message"]
        assert (await client.get("/health")).status_code == 200
