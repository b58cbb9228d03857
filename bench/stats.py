"""Statistics of a benchmark: tokens/s, latency percentiles, and ratios to a baseline target."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.measure import RequestResult


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN when there are no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside [0, 100]")
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def tokens_per_s(tokens: int, seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds}")
    return tokens / seconds


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; NaN when the baseline is zero or missing."""
    return value / baseline if baseline and not math.isnan(baseline) else math.nan


@dataclass(frozen=True)
class Run:
    """One repetition of one step against one target: its requests, sent at the same time."""

    results: tuple[RequestResult, ...]
    cpu_s: Mapping[str, float] = field(default_factory=dict)  # CPU seconds of each watched process group

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.results)

    @property
    def wall(self) -> float:
        """From the first request sent to the last stream ended."""
        return max(r.end for r in self.results) - min(r.start for r in self.results)

    @property
    def tokens_per_s(self) -> float:
        """Aggregate throughput: every completion token over the wall time."""
        return tokens_per_s(self.completion_tokens, self.wall)


@dataclass(frozen=True)
class Summary:
    """One target at one step (an output length, or a number of parallel streams), over its repeats."""

    target: str
    max_tokens: int
    concurrency: int
    repeats: int
    requests: int
    completion_tokens: int
    tokens_per_s: float  # median over repeats of the aggregate tokens/s (robust to a noisy machine)
    tokens_per_s_mean: float
    tokens_per_s_min: float
    tokens_per_s_max: float
    stream_tokens_per_s: float  # mean over requests of each stream's own tokens/s
    ttft_p50_ms: float
    ttft_p90_ms: float
    ttft_p99_ms: float
    itl_p50_ms: float
    itl_p90_ms: float
    itl_p99_ms: float
    ratio_to_baseline: float  # see paired_ratio; NaN without a baseline
    # median over repeats of each watched process group's CPU microseconds per generated token
    cpu_us_per_token: Mapping[str, float] = field(default_factory=dict)


def paired_ratio(runs: Sequence[Run], baseline: Sequence[Run]) -> float:
    """The median over repeats of a run's tokens/s over the baseline's run of the same repeat.

    The two runs of a repeat ran one after the other, so they share the machine's noise: their
    ratio is steadier than a ratio of separate averages.
    """
    if not runs or len(runs) != len(baseline):
        raise ValueError(f"{len(runs)} runs cannot be paired with {len(baseline)} baseline runs")
    return float(np.median([ratio(r.tokens_per_s, b.tokens_per_s) for r, b in zip(runs, baseline, strict=True)]))


def summarize(
    target: str, max_tokens: int, concurrency: int, runs: Sequence[Run], baseline: Sequence[Run] | None = None
) -> Summary:
    """One target's runs of one step; ``baseline`` is the baseline target's runs of the same repeats."""
    if not runs:
        raise ValueError(f"no runs to summarize for {target}")
    results = [r for run in runs for r in run.results]
    rates = [run.tokens_per_s for run in runs]
    ttfts = [r.ttft * 1000 for r in results]
    itls = [gap * 1000 for r in results for gap in r.inter_token_latencies]
    return Summary(
        target=target,
        max_tokens=max_tokens,
        concurrency=concurrency,
        repeats=len(runs),
        requests=len(results),
        completion_tokens=sum(run.completion_tokens for run in runs),
        tokens_per_s=float(np.median(rates)),
        tokens_per_s_mean=float(np.mean(rates)),
        tokens_per_s_min=min(rates),
        tokens_per_s_max=max(rates),
        stream_tokens_per_s=float(np.mean([tokens_per_s(r.completion_tokens, r.duration) for r in results])),
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p90_ms=percentile(ttfts, 90),
        ttft_p99_ms=percentile(ttfts, 99),
        itl_p50_ms=percentile(itls, 50),
        itl_p90_ms=percentile(itls, 90),
        itl_p99_ms=percentile(itls, 99),
        ratio_to_baseline=math.nan if baseline is None else paired_ratio(runs, baseline),
        cpu_us_per_token=cpu_per_token(runs),
    )


def cpu_per_token(runs: Sequence[Run]) -> dict[str, float]:
    """Each watched group's CPU microseconds per generated token, the median over runs."""
    names = runs[0].cpu_s.keys() if runs else ()
    return {name: float(np.median([run.cpu_s[name] * 1e6 / run.completion_tokens for run in runs])) for name in names}


@dataclass(frozen=True)
class RatioRow:
    """One step of a comparison table: each target's tokens/s and its ratio to the baseline."""

    step: int
    tokens_per_s: tuple[float, ...]
    ratios: tuple[float, ...]


def ratio_table(summaries: Sequence[Summary], targets: Sequence[str], step: Callable[[Summary], int]) -> list[RatioRow]:
    """Rows by step (in first-seen order), columns by ``targets``; NaN where a target lacks a step."""
    by_key = {(step(s), s.target): s for s in summaries}
    rows = []
    for value in dict.fromkeys(step(s) for s in summaries):
        cells = [by_key.get((value, t)) for t in targets]
        rows.append(
            RatioRow(
                value,
                tuple(math.nan if c is None else c.tokens_per_s for c in cells),
                tuple(math.nan if c is None else c.ratio_to_baseline for c in cells),
            )
        )
    return rows
