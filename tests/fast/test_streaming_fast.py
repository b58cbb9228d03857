"""What every answer that runs gRPC calls shares (gateway.streaming), on in-memory engines:
keep-alive comments while a model loads, an error after the first byte in-band then [DONE],
and a client that leaves a whole answer stopping the engine as one leaving a stream does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tests.fast.conftest import LLAMA, fast_stack
from tests.helpers import until


async def test_a_stream_waiting_for_its_model_sends_keep_alives_then_its_tokens(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack:
        adapter = stack.engine(LLAMA).adapter
        adapter.gate.clear()  # the load on demand waits
        body = {"model": "demo", "prompt": "hello", "max_tokens": 5, "stream": True}
        lines: list[str] = []
        async with (
            httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
            client.stream("POST", "/v1/completions", json=body) as answer,
        ):
            assert answer.status_code == 200
            async for line in answer.aiter_lines():
                lines.append(line)
                if line == ": keep-alive":
                    adapter.gate.set()
        assert lines[0] == ": keep-alive"
        data = [line[6:] for line in lines if line.startswith("data: ")]
        assert data[-1] == "[DONE]"
        assert "".join(json.loads(d)["choices"][0]["text"] for d in data[:-1]) == "hello"


async def test_an_error_after_the_stream_started_goes_in_band_then_done(fake_root: Path) -> None:
    (fake_root / "rotten.fake").write_text("fail: these weights do not load")
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack:
        adapter = stack.engine(LLAMA).adapter
        adapter.gate.clear()
        body = {"model": "rotten", "prompt": "hello", "stream": True}
        lines: list[str] = []
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            async with client.stream("POST", "/v1/completions", json=body) as answer:
                assert answer.status_code == 200  # the stream started (keep-alives) before the failure
                async for line in answer.aiter_lines():
                    lines.append(line)
                    if line == ": keep-alive":
                        adapter.gate.set()
            data = [line[6:] for line in lines if line.startswith("data: ")]
            assert len(data) == 2 and data[1] == "[DONE]"
            error = json.loads(data[0])["error"]
            assert error["code"] >= 400 and error["message"]
            metrics = (await client.get("/metrics")).text
        counted = f'switchyard_gateway_errors_total{{route="/v1/completions",type="{error["code"]}"}} 1.0'
        assert counted in metrics


async def test_a_client_that_leaves_a_whole_answer_stops_the_engine(fake_root: Path) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack:
        engine = stack.engine(LLAMA)
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "max_tokens": 1})  # loads it
            slot = engine.host.find("demo")
            assert slot is not None
            engine.adapter.token_delay_s = 0.01
            body = {"model": "demo", "prompt": "x" * 1000, "max_tokens": 1000}
            asking = asyncio.create_task(client.post("/v1/completions", json=body))
            await until(lambda: slot.in_flight == 1, "the generation to start")
            asking.cancel()  # the client gives up: its connection closes
            await until(lambda: engine.adapter.cancelled == 1, "the engine to see the cancel")
            await until(lambda: slot.in_flight == 0, "the slot to be free")
