"""The runner and the report with in-memory targets: order, exact counts, files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.cli import write_outputs
from bench.measure import BenchError
from bench.report import fmt_ratio, markdown
from bench.runner import Plan, Runner
from bench.targets import parse_target
from tests.bench.fakes import FakeTarget

PROMPTS = ("p0", "p1", "p2")


async def test_runner_warms_up_then_interleaves_targets_per_repeat() -> None:
    log: list[tuple[str, str, int]] = []
    targets = [FakeTarget("a", log), FakeTarget("b", log)]
    plan = Plan(lengths=(4,), concurrencies=(2,), parallel_tokens=8, repeat=2, warmup_tokens=3, prompts=PROMPTS)
    await Runner(targets, plan).run()
    assert log == [
        ("a", "p0", 3),
        ("b", "p0", 3),  # warm-up
        ("a", "p0", 4),
        ("b", "p0", 4),  # single 4, repeat 0: a first
        ("b", "p1", 4),
        ("a", "p1", 4),  # repeat 1: b first, both on the next prompt
        ("a", "p0", 8),
        ("a", "p1", 8),
        ("b", "p0", 8),
        ("b", "p1", 8),  # 2 streams, repeat 0
        ("b", "p1", 8),
        ("b", "p2", 8),
        ("a", "p1", 8),
        ("a", "p2", 8),  # repeat 1
    ]
    assert len(log) == 2 * plan.requests_per_target


async def test_runner_summarizes_with_ratios_to_the_first_target() -> None:
    log: list[tuple[str, str, int]] = []
    targets = [FakeTarget("base", log, gap=0.001), FakeTarget("slow", log, gap=0.002)]
    done: list[None] = []
    plan = Plan(lengths=(4, 8), concurrencies=(1, 2), parallel_tokens=8, prompts=PROMPTS)
    results = await Runner(targets, plan, on_request=lambda: done.append(None)).run()
    assert results.targets == ("base", "slow")
    assert [(s.target, s.max_tokens, s.concurrency) for s in results.single] == [
        ("base", 4, 1),
        ("slow", 4, 1),
        ("base", 8, 1),
        ("slow", 8, 1),
    ]
    assert [s.ratio_to_baseline for s in results.parallel] == pytest.approx([1.0, 0.5, 1.0, 0.5])
    assert [s.completion_tokens for s in results.parallel] == [8, 8, 16, 16]
    assert len(done) == 2 * plan.requests_per_target


async def test_an_inexact_token_count_fails_loudly() -> None:
    log: list[tuple[str, str, int]] = []
    plan = Plan(lengths=(4,), concurrencies=(), prompts=PROMPTS)
    with pytest.raises(BenchError, match=r"short: asked for exactly 16 tokens .* reports 15"):
        await Runner([FakeTarget("ok", log), FakeTarget("short", log, short_by=1)], plan).run()


def test_plan_and_runner_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        Plan(lengths=(0,))
    with pytest.raises(ValueError):
        Plan(prompts=())
    with pytest.raises(ValueError, match="distinct"):
        Runner([FakeTarget("a", []), FakeTarget("a", [])], Plan())


async def test_outputs_are_csv_markdown_and_png(tmp_path: Path) -> None:
    log: list[tuple[str, str, int]] = []
    plan = Plan(lengths=(4, 8), concurrencies=(1, 2), parallel_tokens=8, prompts=PROMPTS)
    results = await Runner([FakeTarget("base", log), FakeTarget("ours", log, gap=0.004)], plan).run()
    specs = [parse_target("base=llama-server:http://x"), parse_target("ours=grpc:h:1,engine=llamacpp")]
    report = write_outputs(tmp_path, results, plan, specs, ["--lengths", "4,8"])
    with (tmp_path / "single_stream.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["target"], r["max_tokens"]) for r in rows] == [
        ("base", "4"),
        ("ours", "4"),
        ("base", "8"),
        ("ours", "8"),
    ]
    assert float(rows[1]["ratio_to_baseline"]) == pytest.approx(0.25)
    assert len(list(csv.DictReader((tmp_path / "parallel.csv").read_text().splitlines()))) == 4
    assert (tmp_path / "results.md").read_text() == report
    assert "| max_tokens | base tok/s | ours tok/s | ours / base |" in report
    assert "| 4 | 800.0 | 200.0 | 0.25x |" in report  # 4 tokens in 5 ms, in 20 ms
    assert "`ours=grpc:h:1,engine=llamacpp`" in report
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_markdown_without_parallel_runs_omits_that_table() -> None:
    from bench.runner import Results

    text = markdown(Results(("a",), [], []), Plan(concurrencies=()), ["a=grpc:h:1"], [])
    assert "## Parallel" not in text and "## Single" not in text
    assert fmt_ratio(float("nan")) == "n/a"
