"""A client that goes away stops the engine; /metrics reports requests and latencies."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import E2E_ENGINES, SERVED, Stack
from tests.helpers import wait_until


def running(stack: Stack, engine: str) -> int:
    value = stack.engine_status(engine)["running"]
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_disconnect_mid_stream_frees_the_engine(stack: Stack, engine: str) -> None:
    body = {"prompt": "hi", "model": SERVED[engine], "max_tokens": 3000, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{stack.url}/v1/completions", json=body, timeout=120) as answer:
        lines = answer.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        wait_until(lambda: running(stack, engine) == 1, 30, f"{engine} to run the request")
    wait_until(lambda: running(stack, engine) == 0, 30, f"{engine} to stop after the disconnect")


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_disconnect_during_a_whole_answer_frees_the_engine(stack: Stack, engine: str) -> None:
    body = {"prompt": "hi", "model": SERVED[engine], "max_tokens": 3000, "ignore_eos": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{stack.url}/v1/completions", json=body, timeout=httpx.Timeout(10, read=2))
    wait_until(lambda: running(stack, engine) == 0, 30, f"{engine} to stop after the disconnect")


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
