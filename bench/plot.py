"""``plot.png``: tokens/s against output length (single stream) and against parallel streams."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

from bench.runner import Results
from bench.stats import Summary


def _panel(
    ax: Axes, summaries: Sequence[Summary], targets: Sequence[str], x: Callable[[Summary], int], title: str, xlabel: str
) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("tokens/s")
    if not summaries:
        ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
        return
    for target in targets:
        points = sorted((x(s), s.tokens_per_s) for s in summaries if s.target == target)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=target)
    steps = sorted({x(s) for s in summaries})
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()


def write_plot(path: Path, results: Results, parallel_tokens: int) -> None:
    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    _panel(left, results.single, results.targets, lambda s: s.max_tokens, "Single stream", "output tokens")
    _panel(
        right,
        results.parallel,
        results.targets,
        lambda s: s.concurrency,
        f"Parallel streams of {parallel_tokens} tokens (aggregate)",
        "parallel streams",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
