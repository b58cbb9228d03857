"""The KV-cache budget: requests run while what they may use fits, then wait in order."""

from __future__ import annotations

import asyncio

import pytest

from services.engine_llamacpp.budget import TokenBudget
from switchyard.errors import InvalidArgument
from tests.helpers import until


async def hold_until(budget: TokenBudget, tokens: int, release: asyncio.Event, log: list[int]) -> None:
    async with budget.hold(tokens):
        log.append(tokens)
        await release.wait()


async def test_requests_that_fit_run_and_the_rest_wait_in_order() -> None:
    budget, log = TokenBudget(8192), list[int]()
    gates = [asyncio.Event() for _ in range(4)]
    tasks = [asyncio.create_task(hold_until(budget, 4016, gate, log)) for gate in gates[:3]]
    await until(lambda: len(log) == 2 and budget.waiting == 1, "two running, one waiting")
    small = asyncio.create_task(hold_until(budget, 100, gates[3], log))  # fits, but must not pass the queue
    await until(lambda: budget.waiting == 2, "the small one queued behind")
    assert log == [4016, 4016]
    gates[0].set()
    await until(lambda: log == [4016, 4016, 4016, 100], "the head, then the small one, admitted")
    for gate in gates:
        gate.set()
    await asyncio.gather(*tasks, small)
    assert budget.used == 0 and budget.waiting == 0


async def test_a_waiter_that_leaves_frees_its_place() -> None:
    budget, log = TokenBudget(100), list[int]()
    running, waiting_gate = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(hold_until(budget, 80, running, log))
    await until(lambda: log == [80], "the first running")
    big = asyncio.create_task(hold_until(budget, 90, waiting_gate, log))
    small = asyncio.create_task(hold_until(budget, 10, waiting_gate, log))
    await until(lambda: budget.waiting == 2, "two waiting")
    big.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big
    await until(lambda: log == [80, 10], "the one behind the leaver admitted")
    running.set()
    waiting_gate.set()
    await asyncio.gather(first, small)
    assert budget.used == 0


async def test_more_than_the_cache_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="cache holds 100"):
        async with TokenBudget(100).hold(101):
            pass
