"""Clients that go away mid-stream: every engine's counters come back to zero, nothing leaks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.faults.conftest import DEMO, ENGINES, counters
from tests.helpers import wait_until

DISCONNECTS = 40  # per engine


def leave_after_first_chunk(stack: Stack, engine: str) -> None:
    body = {"model": DEMO, "engine": engine, "prompt": "hi", "max_tokens": 2000, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{stack.url}/v1/completions", json=body, timeout=120) as answer:
        assert answer.status_code == 200
        assert next(line for line in answer.iter_lines() if line.startswith("data: "))


@pytest.mark.parametrize("engine", ENGINES)
def test_mid_stream_disconnects_leave_the_engine_idle(fault_stack: Stack, engine: str, report: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: leave_after_first_chunk(fault_stack, engine), range(DISCONNECTS)))
    wait_until(lambda: counters(fault_stack, engine) == (0, 0, 0), 120, f"{engine} to be idle again")
    body = {"model": DEMO, "engine": engine, "prompt": "hi", "max_tokens": 4}
    assert httpx.post(f"{fault_stack.url}/v1/completions", json=body, timeout=120).status_code == 200
    report.append(f"{engine}: {DISCONNECTS} mid-stream disconnects, running/waiting/in-flight back to 0")
