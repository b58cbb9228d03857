"""A target with no server: made-up but exact timings, and a log of what it was asked."""

from __future__ import annotations

import asyncio
import time

from bench.measure import RequestResult


def result(start: float, n: int, gap: float = 0.001, tokens: int | None = None) -> RequestResult:
    """A request sent at ``start`` whose ``n`` chunks arrive every ``gap`` seconds; it ends one gap later."""
    chunks = tuple(start + gap * (i + 1) for i in range(n))
    return RequestResult(start, chunks, start + gap * (n + 1), n if tokens is None else tokens)


class FakeTarget:
    def __init__(
        self, name: str, log: list[tuple[str, str, int]], short_by: int = 0, gap: float = 0.001, busy_s: float = 0.0
    ) -> None:
        self.name = name
        self.log = log
        self.short_by = short_by
        self.gap = gap
        self.busy_s = busy_s  # CPU it burns in this process per request
        self.closed = False

    async def stream(self, prompt: str, max_tokens: int) -> RequestResult:
        self.log.append((self.name, prompt, max_tokens))
        start = time.process_time()
        while time.process_time() - start < self.busy_s:
            pass
        await asyncio.sleep(0)
        return result(100.0, max_tokens, self.gap, max_tokens - self.short_by)

    async def aclose(self) -> None:
        self.closed = True
