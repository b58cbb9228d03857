"""The benchmark's files: one CSV per test and a Markdown report with ratio tables."""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from bench.runner import Plan, Results
from bench.stats import Summary, ratio_table

COLUMNS = [f.name for f in dataclasses.fields(Summary) if f.name != "cpu_us_per_token"]


def _cell(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


def cpu_groups(summaries: Sequence[Summary]) -> list[str]:
    """The watched process groups of ``summaries``, in the order they were named."""
    return list(dict.fromkeys(name for s in summaries for name in s.cpu_us_per_token))


def write_csv(path: Path, summaries: Sequence[Summary]) -> None:
    """One row per target and step; the columns are the fields of ``Summary``, then one
    ``cpu_us_per_token[NAME]`` column per watched process group."""
    groups = cpu_groups(summaries)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([*COLUMNS, *(f"cpu_us_per_token[{g}]" for g in groups)])
        for summary in summaries:
            cpu = [_cell(summary.cpu_us_per_token.get(g, math.nan)) for g in groups]
            writer.writerow([_cell(getattr(summary, c)) for c in COLUMNS] + cpu)


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def throughput_table(summaries: Sequence[Summary], targets: Sequence[str], by_length: bool) -> list[str]:
    """Tokens/s per target by step, with each other target's ratio to the first."""
    base, others = targets[0], targets[1:]
    header = ["max_tokens" if by_length else "streams", *(f"{t} tok/s" for t in targets)]
    header += [f"{t} / {base}" for t in others]
    rows = [
        [str(row.step), *(fmt(r) for r in row.tokens_per_s), *(fmt_ratio(r) for r in row.ratios[1:])]
        for row in ratio_table(summaries, targets, (lambda s: s.max_tokens) if by_length else (lambda s: s.concurrency))
    ]
    return _table(header, rows)


def latency_table(single: Sequence[Summary], parallel: Sequence[Summary]) -> list[str]:
    """TTFT and ITL percentiles (ms) of every target and step."""
    header = ["test", "target", "max_tokens", "streams", "TTFT p50", "p90", "p99", "ITL p50", "p90", "p99"]
    rows = [
        [test, s.target, str(s.max_tokens), str(s.concurrency)]
        + [fmt(v, 2) for v in (s.ttft_p50_ms, s.ttft_p90_ms, s.ttft_p99_ms, s.itl_p50_ms, s.itl_p90_ms, s.itl_p99_ms)]
        for test, summaries in (("single", single), ("parallel", parallel))
        for s in summaries
    ]
    lines = _table(header, rows)
    lines[1] = "|---|---|" + "|".join("---:" for _ in header[2:]) + "|"
    return lines


def cpu_table(single: Sequence[Summary], parallel: Sequence[Summary]) -> list[str]:
    """CPU microseconds per generated token of each watched process group, by target and step."""
    groups = cpu_groups([*single, *parallel])
    header = ["test", "target", "max_tokens", "streams", *groups]
    rows = [
        [test, s.target, str(s.max_tokens), str(s.concurrency), *(fmt(s.cpu_us_per_token[g]) for g in groups)]
        for test, summaries in (("single", single), ("parallel", parallel))
        for s in summaries
    ]
    lines = _table(header, rows)
    lines[1] = "|---|---|" + "|".join("---:" for _ in header[2:]) + "|"
    return lines


def markdown(results: Results, plan: Plan, specs: Sequence[str], context: Sequence[str]) -> str:
    """The report: what ran, the throughput tables with ratios, then the latency percentiles."""
    targets = results.targets
    lines = ["# switchyard benchmark", "", *(f"- {c}" for c in context), "- targets (the first is the baseline):"]
    lines += [f"  - `{spec}`" for spec in specs]
    lines += [
        f"- plan: single-stream lengths {list(plan.lengths)}; {list(plan.concurrencies)} parallel streams of "
        f"{plan.parallel_tokens} tokens; repeat {plan.repeat}; {len(plan.prompts)} prompts; greedy, ignore_eos, "
        "every request checked to generate exactly max_tokens",
        "- tokens/s: completion tokens over the wall time from the first request sent to the last stream ended "
        "(median over repeats); ratio: the median over repeats of a target's tokens/s over the baseline's in the "
        "same repeat (those two runs were back to back, so they share the machine's noise)",
        "- TTFT: from sending a request to its first text chunk; ITL: the gap between consecutive text chunks "
        "(milliseconds, percentiles over every request of the step). A text chunk is a streamed message that "
        "carries text: messages with none (a multi-byte character still incomplete, usage only) are not counted, "
        "so every target is measured at the same points of the same greedy output",
    ]
    if results.single:
        lines += ["", "## Single stream", "", *throughput_table(results.single, targets, by_length=True)]
    if results.parallel:
        lines += ["", f"## Parallel streams ({plan.parallel_tokens} tokens each)", ""]
        lines += throughput_table(results.parallel, targets, by_length=False)
    lines += ["", "## Latency (ms)", "", *latency_table(results.single, results.parallel)]
    if any(s.cpu_us_per_token for s in (*results.single, *results.parallel)):
        lines += [
            "",
            "## CPU per generated token (µs)",
            "",
            "Each watched process's CPU time (user + system) over a run, divided by the tokens the run "
            "generated; the median over repeats. While one target runs the others' processes idle, so a "
            "process outside a target's path shows about 0.",
            "",
            *cpu_table(results.single, results.parallel),
        ]
    return "\n".join([*lines, ""])
