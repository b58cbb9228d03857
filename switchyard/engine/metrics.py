"""Prometheus metrics of the engine servicer, labelled by engine; and the engines' own families
(llama-server's ``llamacpp:``), passed on with a ``model`` label."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter("switchyard_engine_requests", "Generate calls by final gRPC status", ["engine", "code"])
IN_FLIGHT = Gauge("switchyard_engine_requests_in_flight", "Generate calls running", ["engine"])
GENERATED_TOKENS = Counter("switchyard_engine_generated_tokens", "Tokens generated (completion tokens)", ["engine"])
PROMPT_TOKENS = Counter("switchyard_engine_prompt_tokens", "Prompt tokens processed", ["engine"])
TIME_TO_FIRST_TOKEN = Histogram(
    "switchyard_engine_time_to_first_token_seconds",
    "From arrival to the first generated token",
    ["engine"],
    buckets=LATENCY_BUCKETS,
)
REQUEST_DURATION = Histogram(
    "switchyard_engine_request_duration_seconds",
    "From arrival to the end of the stream",
    ["engine"],
    buckets=LATENCY_BUCKETS,
)


class EngineFamilies(Collector):
    """The families each running model's engine last reported (read with its status poll, so
    a scrape costs no call to the engine), one family per name with the model as a label: the
    dashboards made for llama-server work on this service's /metrics."""

    def __init__(self, models: Callable[[], Iterable[tuple[str, list[Metric]]]]) -> None:
        self.models = models  # (served name, its families), at scrape time

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for model, families in self.models():
            for family in families:
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(family.name, family.documentation, family.type)
                for sample in family.samples:
                    out.add_sample(sample.name, {**sample.labels, "model": model}, sample.value, sample.timestamp)
        yield from merged.values()
