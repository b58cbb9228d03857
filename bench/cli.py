"""``python -m bench``: the command line, the run, and where its files go."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from bench.cpu import ROLES, CpuMeter, resolve
from bench.measure import BenchError
from bench.plot import write_plot
from bench.prompts import load_prompts
from bench.report import markdown, write_csv
from bench.runner import Plan, Results, Runner
from bench.targets import TargetSpec, open_target, parse_target

RESULTS = Path(__file__).resolve().parent / "results"


def int_list(text: str) -> tuple[int, ...]:
    """``"64,128"`` -> ``(64, 128)``; an empty string is an empty list (that test is skipped)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Exact-length streaming benchmark of one or more targets in one run; the first target "
        "is the baseline that ratios are taken to.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="[NAME=]KIND:ADDRESS[,KEY=VALUE...]",
        help="grpc:HOST:PORT[,engine=vllm|llamacpp][,model=M] | openai:BASE_URL[,model=M][,FIELD=VALUE...] "
        "(chat:, responses:, anthropic: the same for the gateway's other APIs) | llama-server:BASE_URL; "
        "repeat for a comparison",
    )
    parser.add_argument("--lengths", type=int_list, default="64,128,256,512,1024", help="single-stream lengths")
    parser.add_argument("--concurrency", type=int_list, default="4,8,16,32,64", help="parallel stream counts")
    parser.add_argument("--parallel-tokens", type=int, default=1024, help="output length of each parallel stream")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step per target")
    parser.add_argument("--warmup-tokens", type=int, default=16, help="length of each target's warm-up request")
    parser.add_argument(
        "--prompts-file", type=Path, help="UTF-8 prompts, one per line; unset: the built-in Japanese ones"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per request")
    parser.add_argument("--out", type=Path, help="output folder (default: bench/results/<timestamp>/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--cpu-of",
        action="append",
        default=[],
        metavar="auto|ROLE|NAME=PATTERN|NAME=PID[+PID...]",
        help="also report the CPU microseconds per generated token of these processes (repeatable; "
        f"roles: {', '.join(ROLES)}; auto: every part of a running stack)",
    )
    return parser


async def run(
    specs: Sequence[TargetSpec], plan: Plan, timeout: float, progress: bool, meter: CpuMeter | None = None
) -> Results:
    targets = [open_target(spec, timeout) for spec in specs]
    total = len(targets) * plan.requests_per_target
    with tqdm(total=total, unit="req", file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
        try:
            runner = Runner(
                targets, plan, on_request=lambda: bar.update(), on_step=bar.set_description_str, meter=meter
            )
            return await runner.run()
        finally:
            for target in targets:
                await target.aclose()


def write_outputs(out: Path, results: Results, plan: Plan, specs: Sequence[TargetSpec], argv: Sequence[str]) -> str:
    """Writes the CSVs, the Markdown and the plot into ``out``; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "single_stream.csv", results.single)
    write_csv(out / "parallel.csv", results.parallel)
    context = [
        f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"command: `python -m bench {shlex.join(argv)}`",
    ]
    report = markdown(results, plan, [str(s) for s in specs], context)
    (out / "results.md").write_text(report, encoding="utf-8")
    write_plot(out / "plot.png", results, plan.parallel_tokens)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        specs = [parse_target(text, i) for i, text in enumerate(args.target)]
        if len({s.name for s in specs}) != len(specs):
            raise ValueError("targets need distinct names: give them as NAME=KIND:ADDRESS")
        plan = Plan(
            lengths=args.lengths,
            concurrencies=args.concurrency,
            parallel_tokens=args.parallel_tokens,
            repeat=args.repeat,
            warmup_tokens=args.warmup_tokens,
            prompts=load_prompts(args.prompts_file),
        )
        meter = CpuMeter([w for spec in args.cpu_of for w in resolve(spec)]) if args.cpu_of else None
    except (ValueError, OSError) as error:
        parser.error(str(error))
    out: Path = args.out or RESULTS / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        results = asyncio.run(run(specs, plan, args.timeout, not args.no_progress, meter))
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(write_outputs(out, results, plan, specs, args_list))
    print(f"results in {out}", file=sys.stderr)
