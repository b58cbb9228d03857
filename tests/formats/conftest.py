"""A stack whose model roots hold the demo model's chat-format variants (switchyard/demo_formats.py):
Qwen3-style thinking with Hermes tools, Mistral tools and gpt-oss harmony (over a small vocabulary,
and over gpt-oss's own o200k_harmony), loaded on demand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.demo_model import make_demo_model
from tests.e2e.conftest import Stack, start_stack, stop_stack

VARIANTS = ("qwen3", "mistral", "harmony", "harmony-o200k")
ENGINE_ARGS = {
    "llamacpp": ["--max-models", "4"],
    "vllm": ["--max-models", "3", "--default-dtype", "float32", "--cpu-kv-cache-bytes", str(64 * 1024**2)],
}


def served(variant: str) -> str:
    return f"switchyard-demo-{variant}"


@pytest.fixture(scope="session")
def formats_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    for variant in VARIANTS:
        make_demo_model(root, variant=variant)
    return root


@pytest.fixture(scope="module")
def formats_stack(formats_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(formats_root, tmp_path_factory.mktemp("formats-stack"), engine_args=ENGINE_ARGS)
    try:
        yield started
    finally:
        stop_stack(started)
