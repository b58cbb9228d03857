"""Prometheus metrics of the engine servicer, labelled by engine."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
