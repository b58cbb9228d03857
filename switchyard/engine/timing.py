"""Per-request timings measured in the engine service, the same way for every engine."""

from __future__ import annotations

import time

from switchyard.v1 import inference_pb2


class RequestClock:
    """Arrival, the engine starting on the request, first and last generated token."""

    def __init__(self) -> None:
        self.arrival = time.monotonic()
        self.start: float | None = None
        self.first: float | None = None
        self.last: float | None = None

    def started(self) -> None:
        self.start = time.monotonic()

    def token(self) -> None:
        now = time.monotonic()
        self.first = self.first or now
        self.last = now

    def timings(self, queue_ms: float | None = None) -> inference_pb2.Timings:
        """In milliseconds; ``queue_ms`` when the engine measured the queue itself."""
        end = time.monotonic()
        ms = 1000.0
        return inference_pb2.Timings(
            queue_ms=queue_ms if queue_ms is not None else ((self.start or end) - self.arrival) * ms,
            time_to_first_token_ms=((self.first or end) - self.arrival) * ms,
            decode_ms=((self.last or end) - (self.first or end)) * ms,
            total_ms=(end - self.arrival) * ms,
        )
