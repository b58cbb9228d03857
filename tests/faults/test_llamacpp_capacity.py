"""Long prompts at once on llama.cpp's default configuration (an 8,192-token shared cache, a
4,096-token context per request): every one is served, those that do not fit waiting for
room, as vLLM's scheduler would have them wait (services/engine_llamacpp/budget.py)."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.e2e.conftest import Stack
from tests.faults.conftest import DEMO, FIGURES

PROMPT_TOKENS = 4000
CONCURRENT = 8


def long_prompt(seed: int) -> list[int]:
    return [10 + (seed * 7 + i) % 900 for i in range(PROMPT_TOKENS)]  # distinct: no shared prefix to reuse


async def test_concurrent_long_prompts_are_all_served(fault_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=fault_stack.url, timeout=600) as client:

        async def one(seed: int) -> httpx.Response:
            body = {"model": DEMO, "engine": "llamacpp", "prompt": long_prompt(seed), "max_tokens": 16}
            return await client.post("/v1/completions", json={**body, "ignore_eos": True})

        started = time.monotonic()
        answers = await asyncio.gather(*(one(seed) for seed in range(CONCURRENT)))
        took = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * CONCURRENT, [a.text[:200] for a in answers]
    assert all(a.json()["usage"]["completion_tokens"] == 16 for a in answers)
    FIGURES.append(
        f"llama.cpp default configuration: {CONCURRENT} prompts of {PROMPT_TOKENS} tokens at once, "
        f"all served in {took:.1f}s"
    )
