"""Schema bombs on both engines: every one answers 400 within a bound, as a response_format
and as a forced tool's parameters, and no part of the stack grows while refusing them."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import Stack
from tests.faults.conftest import DEMO, ENGINES, FIGURES
from tests.schema_bombs import BOMBS

ANSWER_WITHIN_S = 30.0  # generous on a busy machine; a refusal takes milliseconds
GROWTH_CEILING_MB = 300  # per part (its process tree), over all the bombs


def tree_rss_mb(pid: int) -> float:
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def parts(stack: Stack) -> dict[str, int]:
    services = {"gateway": stack.gateway, "router": stack.router, **stack.engines}
    return {name: service.proc.pid for name, service in services.items() if service.proc is not None}


def bodies(engine: str, schema: Any) -> list[dict[str, Any]]:
    chat = {"model": DEMO, "engine": engine, "messages": [{"role": "user", "content": "x"}], "max_tokens": 8}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    return [
        {**chat, "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}},
        {**chat, "tools": [tool], "tool_choice": "required"},
        {**chat, "tools": [tool], "tool_choice": {"type": "function", "function": {"name": "f"}}},
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_schema_bombs_are_refused_quickly_and_nothing_grows(fault_stack: Stack, engine: str) -> None:
    before = {name: tree_rss_mb(pid) for name, pid in parts(fault_stack).items()}
    slowest = 0.0
    for name, (schema, words) in BOMBS.items():
        for body in bodies(engine, schema):
            started = time.monotonic()
            answer = httpx.post(f"{fault_stack.url}/v1/chat/completions", json=body, timeout=ANSWER_WITHIN_S)
            slowest = max(slowest, time.monotonic() - started)
            assert answer.status_code == 400, (name, answer.text)
            assert words.lower() in answer.json()["error"]["message"].lower(), (name, answer.text)
    after = {name: tree_rss_mb(pid) for name, pid in parts(fault_stack).items()}
    growth = {name: after[name] - before[name] for name in before}
    assert all(grown < GROWTH_CEILING_MB for grown in growth.values()), growth
    FIGURES.append(
        f"schema bombs on {engine}: {len(BOMBS)} schemas refused with 400, slowest {slowest * 1000:.0f} ms; "
        f"RSS growth per part (MB): " + ", ".join(f"{n} {g:+.0f}" for n, g in growth.items())
    )
