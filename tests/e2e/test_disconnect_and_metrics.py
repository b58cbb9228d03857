"""A client that goes away stops the engine; /metrics reports requests and latencies."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.conftest import E2E_ENGINES, SERVED, Stack
from tests.helpers import wait_until

# Near the demo model's 4096-token context: seconds of work for either engine on any machine here.
LONG_ANSWER = 4000
# How long an engine may take to start running a request: a deadline, not a pause. vLLM on two
# cores kept busy by other processes took over 30 s once the suite had run for a while.
START_DEADLINE_S = 120


ATTEMPTS = 3  # a fast engine can finish a whole answer between two status polls: then try again


def running(stack: Stack, engine: str) -> int:
    value = stack.engine_status(engine)["running"]
    assert isinstance(value, int)
    return value


async def consume(client: httpx.AsyncClient, url: str, body: dict[str, object]) -> None:
    if body.get("stream"):
        async with client.stream("POST", url, json=body) as answer:
            async for _ in answer.aiter_lines():
                pass
    else:
        (await client.post(url, json=body)).raise_for_status()


async def hang_up_while_running(stack: Stack, engine: str, stream: bool) -> None:
    """Send a long request, hang up once the engine runs it, and see the engine freed. The
    answer is read to its end meanwhile, so that an engine that finished it before a status
    poll saw it running is told apart (and asked again) rather than waited for."""
    body = {"prompt": "hi", "model": SERVED[engine], "max_tokens": LONG_ANSWER, "ignore_eos": True, "stream": stream}
    async with httpx.AsyncClient(timeout=120) as client:
        for _ in range(ATTEMPTS):
            answer = asyncio.create_task(consume(client, f"{stack.url}/v1/completions", body))

            def seen(answer: asyncio.Task[None] = answer) -> bool:
                return answer.done() or running(stack, engine) >= 1

            await asyncio.to_thread(wait_until, seen, START_DEADLINE_S, f"{engine} to run the request")
            if answer.done():
                answer.result()  # an error is the test's failure; a whole answer is a lost race
                continue
            answer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await answer
            break
        else:
            pytest.fail(f"{engine} finished {ATTEMPTS} answers of {LONG_ANSWER} tokens before a status poll saw one")
    wait_until(lambda: running(stack, engine) == 0, 30, f"{engine} to stop after the disconnect")


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
async def test_disconnect_mid_stream_frees_the_engine(stack: Stack, engine: str) -> None:
    await hang_up_while_running(stack, engine, stream=True)


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
async def test_disconnect_during_a_whole_answer_frees_the_engine(stack: Stack, engine: str) -> None:
    """The client hangs up once the engine runs its request, however fast this machine generates."""
    await hang_up_while_running(stack, engine, stream=False)


def test_metrics_report_requests_and_latency_per_engine(stack: Stack) -> None:
    engine = E2E_ENGINES[0].name
    body = {"prompt": "hi", "model": SERVED[engine], "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{stack.url}/v1/completions", json=body, timeout=60) as answer:
        list(answer.iter_lines())
    text = httpx.get(f"{stack.url}/metrics").text
    assert f'switchyard_gateway_time_to_first_token_seconds_count{{engine="{engine}"}}' in text
    assert f'switchyard_gateway_inter_token_latency_seconds_count{{engine="{engine}"}}' in text
    assert 'switchyard_gateway_requests_total{route="/v1/completions",status="200"}' in text
    assert "switchyard_gateway_errors_total" in text
