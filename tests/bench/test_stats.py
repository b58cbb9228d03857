"""Statistics with no server: percentiles, tokens/s, summaries and ratio tables."""

from __future__ import annotations

import math

import pytest

from bench.measure import RequestResult
from bench.stats import Run, paired_ratio, percentile, ratio, ratio_table, summarize, tokens_per_s
from tests.bench.fakes import result


def test_percentile_interpolates_linearly() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile([float(i) for i in range(1, 11)], 90) == pytest.approx(9.1)
    assert percentile([float(i) for i in range(1, 101)], 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan_and_bad_q_raises() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_tokens_per_s() -> None:
    assert tokens_per_s(100, 2.0) == 50.0
    with pytest.raises(ValueError):
        tokens_per_s(1, 0.0)


def test_ratio_is_nan_without_a_baseline() -> None:
    assert ratio(50.0, 100.0) == 0.5
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(1.0, math.nan))


def test_request_ttft_and_inter_token_latencies() -> None:
    r = RequestResult(start=10.0, chunk_times=(10.5, 10.75, 11.0), end=11.25, completion_tokens=3)
    assert r.ttft == 0.5
    assert r.inter_token_latencies == [0.25, 0.25]
    assert r.duration == 1.25
    assert RequestResult(1.0, (), 3.0, 0).ttft == 2.0


def test_aggregate_tokens_per_s_spans_first_start_to_last_end() -> None:
    run = Run((RequestResult(0.0, (0.5,), 1.0, 10), RequestResult(0.5, (1.0,), 2.0, 30)))
    assert run.completion_tokens == 40
    assert run.wall == 2.0
    assert run.tokens_per_s == 20.0


def test_summary_averages_repeats_and_pools_latencies() -> None:
    fast = Run((result(0.0, 4, gap=0.01),))  # 4 tokens in 50 ms: 80 tok/s
    slow = Run((result(0.0, 4, gap=0.02),))  # 4 tokens in 100 ms: 40 tok/s
    s = summarize("a", 4, 1, [fast, slow])
    assert (s.repeats, s.requests, s.completion_tokens) == (2, 2, 8)
    assert s.tokens_per_s == pytest.approx(60.0)  # the median of two
    assert s.tokens_per_s_mean == pytest.approx(60.0)
    assert (s.tokens_per_s_min, s.tokens_per_s_max) == pytest.approx((40.0, 80.0))
    assert s.stream_tokens_per_s == pytest.approx(60.0)
    assert s.ttft_p50_ms == pytest.approx(15.0)  # TTFTs 10 and 20 ms
    assert s.itl_p50_ms == pytest.approx(15.0)  # three gaps of 10 ms, three of 20 ms
    assert s.itl_p99_ms == pytest.approx(20.0)
    assert math.isnan(s.ratio_to_baseline)


def test_summary_takes_the_median_of_repeats() -> None:
    runs = [Run((result(0.0, 4, gap=gap),)) for gap in (0.01, 0.01, 0.1)]  # 80, 80 and 8 tok/s
    s = summarize("a", 4, 1, runs)
    assert s.tokens_per_s == pytest.approx(80.0)
    assert s.tokens_per_s_mean == pytest.approx(56.0)


def test_summary_of_single_token_requests_has_no_itl() -> None:
    s = summarize("a", 1, 1, [Run((result(0.0, 1),))])
    assert math.isnan(s.itl_p50_ms)
    with pytest.raises(ValueError):
        summarize("a", 1, 1, [])


def test_paired_ratio_is_the_median_of_per_repeat_ratios() -> None:
    base = [Run((result(0.0, 4, gap=g),)) for g in (0.01, 0.02, 0.04)]  # 80, 40, 20 tok/s
    ours = [Run((result(0.0, 4, gap=g),)) for g in (0.02, 0.02, 0.16)]  # 40, 40, 5 tok/s
    assert paired_ratio(ours, base) == pytest.approx(0.5)  # median of 0.5, 1.0, 0.25
    assert paired_ratio(base, base) == 1.0
    s = summarize("ours", 4, 1, ours, base)
    assert s.ratio_to_baseline == pytest.approx(0.5)
    assert s.ratio_to_baseline != pytest.approx(s.tokens_per_s / summarize("b", 4, 1, base).tokens_per_s)
    with pytest.raises(ValueError):
        paired_ratio(ours, base[:2])


def test_ratio_table_has_a_column_per_target_and_a_row_per_step() -> None:
    base = {c: [Run((result(0.0, 8, gap=0.01),) * c)] for c in (1, 2)}
    a = [summarize("a", 8, c, base[c], base[c]) for c in (1, 2)]
    b = [summarize("b", 8, c, [Run((result(0.0, 8, gap=0.04),) * c)], base[c]) for c in (1, 2)]
    rows = ratio_table([*a, *b], ["a", "b"], lambda s: s.concurrency)
    assert [row.step for row in rows] == [1, 2]
    assert rows[1].tokens_per_s == pytest.approx((2 * 8 / 0.09, 2 * 8 / 0.36))
    assert rows[0].ratios == pytest.approx((1.0, 0.25))
    missing = ratio_table(a, ["a", "b"], lambda s: s.concurrency)
    assert math.isnan(missing[0].tokens_per_s[1]) and math.isnan(missing[0].ratios[1])
