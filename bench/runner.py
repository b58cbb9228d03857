"""Runs a benchmark plan against several targets, interleaved step by step.

At every step (an output length, or a number of parallel streams) each repeat runs the same load
against every target in turn, starting with a different target each time, so that the targets
share the machine's noise and no one always goes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bench.cpu import CpuMeter, spent
from bench.measure import RequestResult, check_exact
from bench.prompts import JAPANESE_PROMPTS
from bench.stats import Run, Summary, summarize
from bench.targets import Target

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    lengths: tuple[int, ...] = (64, 128, 256, 512, 1024)  # single-stream output lengths
    concurrencies: tuple[int, ...] = (4, 8, 16, 32, 64)  # parallel stream counts
    parallel_tokens: int = 1024  # output length of each parallel stream
    repeat: int = 1
    warmup_tokens: int = 16
    prompts: tuple[str, ...] = JAPANESE_PROMPTS

    def __post_init__(self) -> None:
        sizes = (*self.lengths, *self.concurrencies, self.parallel_tokens, self.repeat, self.warmup_tokens)
        if any(n < 1 for n in sizes):
            raise ValueError("lengths, stream counts, repeats and token counts must all be at least 1")
        if not self.prompts:
            raise ValueError("no prompts")

    @property
    def requests_per_target(self) -> int:
        return 1 + self.repeat * (len(self.lengths) + sum(self.concurrencies))


@dataclass(frozen=True)
class Results:
    targets: tuple[str, ...]  # the first is the baseline
    single: list[Summary]
    parallel: list[Summary]


def _nothing(*_: object) -> None:
    return None


async def gather_all(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """All results, in order; on the first failure the others are cancelled and awaited, then it raises."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_once(
    target: Target,
    prompts: Sequence[str],
    offset: int,
    concurrency: int,
    max_tokens: int,
    on_request: Callable[[], object] = _nothing,
    meter: CpuMeter | None = None,
) -> Run:
    """``concurrency`` requests of exactly ``max_tokens`` at once, stream ``i`` with prompt
    ``offset + i``; with a ``meter``, also the CPU the watched processes spent meanwhile."""

    async def one(i: int) -> RequestResult:
        result = await target.stream(prompts[(offset + i) % len(prompts)], max_tokens)
        check_exact(result, max_tokens, target.name)
        on_request()
        return result

    before = meter.sample() if meter is not None else {}
    results = tuple(await gather_all([one(i) for i in range(concurrency)]))
    return Run(results, spent(before, meter.sample()) if meter is not None else {})


class Runner:
    def __init__(
        self,
        targets: Sequence[Target],
        plan: Plan,
        on_request: Callable[[], object] = _nothing,
        on_step: Callable[[str], object] = _nothing,
        meter: CpuMeter | None = None,
    ) -> None:
        names = [t.name for t in targets]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"targets need distinct names, got {names}")
        self.targets = list(targets)
        self.plan = plan
        self.on_request = on_request
        self.on_step = on_step
        self.meter = meter
        self._turn = 0  # rotates the order of targets from one repeat to the next

    async def run(self) -> Results:
        plan = self.plan
        for target in self.targets:
            self.on_step(f"warm-up {target.name}")
            await run_once(target, plan.prompts, 0, 1, plan.warmup_tokens, self.on_request)
        single = [s for n in plan.lengths for s in await self.step(f"single {n} tok", 1, n)]
        parallel = [
            s
            for c in plan.concurrencies
            for s in await self.step(f"{c} x {plan.parallel_tokens} tok", c, plan.parallel_tokens)
        ]
        return Results(tuple(t.name for t in self.targets), single, parallel)

    async def step(self, label: str, concurrency: int, max_tokens: int) -> list[Summary]:
        """Every repeat of one step against every target; a summary per target, in target order."""
        runs: dict[str, list[Run]] = {t.name: [] for t in self.targets}
        for repeat in range(self.plan.repeat):
            first = self._turn % len(self.targets)
            self._turn += 1
            for target in self.targets[first:] + self.targets[:first]:
                self.on_step(f"{label} {target.name}")
                run = await run_once(
                    target, self.plan.prompts, repeat, concurrency, max_tokens, self.on_request, self.meter
                )
                runs[target.name].append(run)
        baseline = runs[self.targets[0].name]
        return [summarize(t.name, max_tokens, concurrency, runs[t.name], baseline) for t in self.targets]
