"""CPU per generated token: which processes are watched, and the figures in the report."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.cli import write_outputs
from bench.cpu import CpuMeter, Watched, resolve
from bench.runner import Plan, Runner
from bench.targets import parse_target
from tests.bench.fakes import FakeTarget

MARK = "switchyard-bench-cpu-test-sleeper"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(600)  # {MARK}"])
    yield proc
    proc.kill()
    proc.wait()


def test_processes_are_named_by_pattern_pid_or_role(sleeper: subprocess.Popen[bytes]) -> None:
    [by_pattern] = resolve(f"s={MARK}")
    assert [p.pid for p in by_pattern.processes] == [sleeper.pid]
    [by_pid] = resolve(f"s={sleeper.pid}")
    assert by_pid.name == "s" and [p.pid for p in by_pid.processes] == [sleeper.pid]
    for bad in ("nope", "s=no-such-process-anywhere-xyz", "s=999999999"):
        with pytest.raises(ValueError):
            resolve(bad)
    with pytest.raises(ValueError, match="differ"):
        CpuMeter([by_pattern, by_pid, Watched("s", ())])


async def test_cpu_per_token_is_reported_per_target_and_step(tmp_path: Path) -> None:
    """The bench process itself is watched: its CPU per token is positive, in the CSV and the
    Markdown, for every target and step."""
    meter = CpuMeter([Watched("me", (psutil.Process(),))])
    log: list[tuple[str, str, int]] = []
    plan = Plan(lengths=(64,), concurrencies=(2,), parallel_tokens=64, prompts=("p",))
    targets = [FakeTarget("a", log, busy_s=0.05), FakeTarget("b", log, busy_s=0.05)]
    results = await Runner(targets, plan, meter=meter).run()
    assert all(s.cpu_us_per_token["me"] > 0 for s in (*results.single, *results.parallel))
    specs = [parse_target("a=llama-server:http://x"), parse_target("b=llama-server:http://y")]
    report = write_outputs(tmp_path, results, plan, specs, [])
    with (tmp_path / "parallel.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["cpu_us_per_token[me]"]) > 0 for r in rows] == [True, True]
    assert "## CPU per generated token (µs)" in report and "| test | target | max_tokens | streams | me |" in report
