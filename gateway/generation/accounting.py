"""What one request's generations count, apart from how they are answered: latency metrics per
engine (time to first token, inter-token gaps, tokens) and the usage summed over its choices."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gateway import metrics
from gateway.generation.schemas import Usage
from switchyard.engines import ENGINE_NAMES
from switchyard.v1 import inference_pb2 as pb


def usage_json(prompt_tokens: int, completion_tokens: int, cached_tokens: int, reasoning_tokens: int = 0) -> Usage:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


class LatencyClock:
    """Time to first token and inter-token gaps, labelled by engine once it is known."""

    def __init__(self, requested_engine: str | None) -> None:
        self.start = time.monotonic()
        self.engine = requested_engine or "unknown"
        self.first: float | None = None
        self.gaps: list[float] = []
        self.last = 0.0

    def delta(self) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now - self.start
        else:
            self.gaps.append(now - self.last)
        self.last = now

    def finish(self, finished: pb.Finished) -> None:
        self.engine = ENGINE_NAMES.get(finished.engine, self.engine)
        if self.first is not None:
            metrics.TIME_TO_FIRST_TOKEN.labels(self.engine).observe(self.first)
            self.first = None  # once per request, however many choices
        histogram = metrics.INTER_TOKEN_LATENCY.labels(self.engine)
        for gap in self.gaps:
            histogram.observe(gap)
        self.gaps.clear()
        metrics.GENERATED_TOKENS.labels(self.engine).inc(finished.usage.completion_tokens)


class Usages:
    """Usage over the choices: completions summed, each prompt counted once."""

    def __init__(self, prompts: Sequence[int]) -> None:
        self.prompts = prompts  # the prompt index of each choice
        self.prompt_tokens: dict[int, int] = {}
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.reasoning_tokens = 0

    def add(self, index: int, finished: pb.Finished) -> None:
        usage = finished.usage
        self.prompt_tokens.setdefault(self.prompts[index], usage.prompt_tokens)
        self.completion_tokens += usage.completion_tokens
        self.cached_tokens = max(self.cached_tokens, usage.cached_tokens)
        self.reasoning_tokens += usage.reasoning_tokens

    def total(self) -> Usage:
        prompt = sum(self.prompt_tokens.values())
        return usage_json(prompt, self.completion_tokens, self.cached_tokens, self.reasoning_tokens)
