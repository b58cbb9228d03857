"""The fault suite's stack (both engines, nothing loaded; requests load the demo model on
demand) and its report: the figures each fault test measured, printed after the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import E2E_ENGINES, Stack, start_stack, stop_stack
from tests.helpers import report_section

ENGINES = [e.name for e in E2E_ENGINES]
DEMO = "switchyard-demo"
ENGINE_ARGS = {"vllm": ["--default-dtype", "float32", "--cpu-kv-cache-bytes", str(96 * 1024**2)]}
FIGURES = report_section("fault suite figures")


@pytest.fixture(scope="session")
def report() -> list[str]:
    return FIGURES


@pytest.fixture(scope="session")
def fault_stack(two_model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(two_model_root, tmp_path_factory.mktemp("faults"), engine_args=ENGINE_ARGS)
    try:
        for engine in ENGINES:  # load on demand once, so later tests start warm
            body = {"model": DEMO, "engine": engine, "prompt": "hi", "max_tokens": 1}
            assert httpx.post(f"{stack.url}/v1/completions", json=body, timeout=600).status_code == 200
        yield stack
    finally:
        stop_stack(stack)


def counters(stack: Stack, engine: str) -> tuple[int, int, int]:
    """Running and waiting requests at the engine, and requests in flight in its service."""
    status = stack.engine_status(engine)
    models = status["models"]
    assert isinstance(models, list)
    in_flight = sum(int(m["in_flight"]) for m in models)
    return int(str(status["running"])), int(str(status["waiting"])), in_flight
