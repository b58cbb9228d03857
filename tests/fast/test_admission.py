"""Admission control: a model's bound on requests running or waiting, and the gateway's
bound per API key; one over either gets 429 with Retry-After, and the admitted finish whole.
And what else keys close: /metrics and the docs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tests.fast.conftest import LLAMA, FastStack, fast_stack
from tests.fast.test_stack_fast import sse_data
from tests.helpers import until

LONG = {"model": "demo", "prompt": "x" * 200, "max_tokens": 200, "stream": True}


async def streamed_text(client: httpx.AsyncClient, key: str = "") -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = await client.post("/v1/completions", json=LONG, headers=headers)
    assert answer.status_code == 200, answer.text
    return "".join(json.loads(d)["choices"][0]["text"] for d in sse_data(answer.text)[:-1])


def in_flight(stack: FastStack) -> int:
    slot = stack.engine(LLAMA).host.find("demo")
    return slot.in_flight if slot is not None else 0


async def test_a_full_model_answers_429_with_retry_after_and_loses_nothing(fake_root: Path) -> None:
    async with (
        # A refusal is a plain 429 only if it comes before the stream would start with keep-alives.
        fast_stack(fake_root, kinds=(LLAMA,), stream_keepalive_s=30) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=60) as client,
    ):
        engine = stack.engine(LLAMA)
        engine.host.settings.max_in_flight = 2  # before the load, so the status the load publishes shows it
        await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "max_tokens": 1})  # loads it
        engine.adapter.token_delay_s = 0.05  # the admitted two stay busy while the burst comes
        admitted = [asyncio.create_task(streamed_text(client)) for _ in range(2)]
        await until(lambda: in_flight(stack) == 2, "two requests in flight")
        burst = await asyncio.gather(*(client.post("/v1/completions", json=LONG) for _ in range(4)))
        for refused in burst:
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
            assert "max_in_flight" in refused.json()["error"]["message"]
        status = (await client.get("/v1/status")).json()["llamacpp"]
        assert status["replicas"][0]["max_in_flight"] == 2
        engine.adapter.token_delay_s = 0.0
        assert await asyncio.gather(*admitted) == ["x" * 200] * 2
        assert (await client.post("/v1/completions", json={**LONG, "stream": False})).status_code == 200


async def test_one_api_key_may_have_so_many_requests_at_once(fake_root: Path) -> None:
    async with (
        fast_stack(
            fake_root, kinds=(LLAMA,), api_keys=["a", "b"], max_concurrent_per_key=1, users_load_on_demand=True
        ) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=60) as client,
    ):
        engine = stack.engine(LLAMA)
        small = {"model": "demo", "prompt": "x", "max_tokens": 1}
        await client.post("/v1/completions", json=small, headers={"Authorization": "Bearer a"})
        engine.adapter.token_delay_s = 0.05
        first = asyncio.create_task(streamed_text(client, "a"))
        await until(lambda: in_flight(stack) == 1, "a's request in flight")
        again = await client.post("/v1/completions", json=small, headers={"Authorization": "Bearer a"})
        assert again.status_code == 429 and again.headers["retry-after"] == "1"
        assert "max_concurrent_per_key" in again.json()["error"]["message"]
        other = await client.post("/v1/completions", json=small, headers={"Authorization": "Bearer b"})
        assert other.status_code == 200  # another key has its own budget
        engine.adapter.token_delay_s = 0.0
        assert await first == "x" * 200
        after = await client.post("/v1/completions", json=small, headers={"Authorization": "Bearer a"})
        assert after.status_code == 200


async def test_metrics_and_docs_follow_the_keys(fake_root: Path) -> None:
    closed_paths = ("/metrics", "/docs", "/redoc", "/openapi.json")
    async with (
        fast_stack(fake_root, kinds=(LLAMA,), api_keys=["k"]) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
    ):
        for path in closed_paths:
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers={"Authorization": "Bearer k"})).status_code == 200, path
        assert (await client.get("/health")).status_code == 200  # probes never need a key
        assert (await client.get("/ready")).status_code == 503  # (no model loaded: not ready, but no 401)
    async with (
        fast_stack(fake_root, kinds=(LLAMA,), api_keys=["k"], open_metrics_and_docs=True) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
    ):
        for path in closed_paths:
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/openapi.json")).json()["info"]["title"] == "switchyard"


async def test_more_choices_than_a_model_ever_takes_is_a_400_not_429_forever(fake_root: Path) -> None:
    async with (
        fast_stack(fake_root, kinds=(LLAMA,), stream_keepalive_s=30) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=60) as client,
    ):
        stack.engine(LLAMA).host.settings.max_in_flight = 2
        body = {"model": "demo", "prompt": "x", "max_tokens": 1}
        assert (await client.post("/v1/completions", json={**body, "n": 2})).status_code == 200
        too_many = await client.post("/v1/completions", json={**body, "n": 3})
        assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "n", too_many.text
        assert "max_in_flight" in too_many.json()["error"]["message"]
