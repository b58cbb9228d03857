"""What one streamed request measured: when it was sent, when each chunk of text arrived, when it
ended, and how many tokens the server says it generated."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class BenchError(Exception):
    """A benchmark cannot go on: a server error, a malformed stream or an inexact token count."""


@dataclass(frozen=True)
class RequestResult:
    """One request. Times are ``time.perf_counter()`` seconds."""

    start: float
    chunk_times: tuple[float, ...]  # arrival of each message that carried output text
    end: float  # end of the stream
    completion_tokens: int  # as the server counted them (usage / tokens_predicted)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def ttft(self) -> float:
        """Time to first token: from sending to the first text chunk (the end if none came)."""
        return (self.chunk_times[0] if self.chunk_times else self.end) - self.start

    @property
    def inter_token_latencies(self) -> list[float]:
        """Gaps between consecutive text chunks."""
        return [b - a for a, b in zip(self.chunk_times, self.chunk_times[1:], strict=False)]


@dataclass
class Recorder:
    """Collects the times of one request while its stream is read."""

    start: float = field(default_factory=time.perf_counter)
    chunks: list[float] = field(default_factory=list)

    def chunk(self) -> None:
        self.chunks.append(time.perf_counter())

    def finish(self, completion_tokens: int) -> RequestResult:
        return RequestResult(self.start, tuple(self.chunks), time.perf_counter(), completion_tokens)


def check_exact(result: RequestResult, max_tokens: int, target: str) -> None:
    """Fail loudly unless the server generated exactly ``max_tokens`` (ignore_eos runs)."""
    if result.completion_tokens != max_tokens:
        raise BenchError(
            f"{target}: asked for exactly {max_tokens} tokens (ignore_eos) but the server reports "
            f"{result.completion_tokens}; figures would not be comparable"
        )
