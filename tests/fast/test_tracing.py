"""Tracing across the three layers: one completion through the gateway records the span tree
gateway (HTTP) -> router -> engine, with the trace context carried in gRPC metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.runtime import tracing
from tests.fast.conftest import LLAMA, fast_stack

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the tracing extra is not installed")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

GENERATE = "/switchyard.v1.Inference/Generate"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(provider)
    try:
        yield exporter
    finally:
        tracing.uninstrument()


async def test_a_completion_is_one_trace_from_the_gateway_to_the_engine(
    fake_root: Path, spans: InMemorySpanExporter
) -> None:
    async with (
        fast_stack(fake_root, kinds=(LLAMA,)) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
    ):
        await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "max_tokens": 1})  # loads it
        spans.clear()
        body = {"model": "demo", "prompt": "hello", "max_tokens": 3, "stream": True}
        assert (await client.post("/v1/completions", json=body)).status_code == 200
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    generate = [s for s in finished if s.name == GENERATE]
    kinds = sorted(s.kind.name for s in generate)
    # The gateway's call and the router's call (clients), and the router's and the engine's (servers).
    assert kinds == ["CLIENT", "CLIENT", "SERVER", "SERVER"], [(s.name, s.kind.name) for s in finished]

    def depth(span: object) -> int:
        """How many ancestors a span has in this trace."""
        n, parent = 0, getattr(span, "parent", None)
        while parent is not None:
            n, parent = n + 1, by_id[parent.span_id].parent
        return n

    engine_side = max(generate, key=depth)  # the deepest: the engine's server span
    chain = [engine_side]
    while chain[-1].parent is not None:
        chain.append(by_id[chain[-1].parent.span_id])
    assert [s.kind.name for s in chain][:4] == ["SERVER", "CLIENT", "SERVER", "CLIENT"]
    assert chain[-1].name.startswith("POST /v1/completions")  # the gateway's HTTP span is the root
    assert len({s.context.trace_id for s in chain}) == 1
