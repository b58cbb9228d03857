"""Request timings are ordered and in milliseconds."""

from __future__ import annotations

from switchyard.engine.timing import RequestClock


def test_timings_are_ordered() -> None:
    clock = RequestClock()
    clock.started()
    clock.token()
    clock.token()
    t = clock.timings()
    assert 0 <= t.queue_ms <= t.time_to_first_token_ms <= t.total_ms and t.decode_ms >= 0


def test_engine_measured_queue_time_wins() -> None:
    assert RequestClock().timings(queue_ms=12.5).queue_ms == 12.5


def test_no_token_means_first_token_at_the_end() -> None:
    t = RequestClock().timings()
    assert t.time_to_first_token_ms == t.total_ms and t.decode_ms == 0
