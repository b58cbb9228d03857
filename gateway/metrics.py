"""Prometheus metrics of the gateway."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from starlette.types import Scope

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.5)

REQUESTS = Counter("switchyard_gateway_requests", "HTTP requests by route and status", ["route", "status"])
ERRORS = Counter("switchyard_gateway_errors", "Failed requests by route and error type", ["route", "type"])
TIME_TO_FIRST_TOKEN = Histogram(
    "switchyard_gateway_time_to_first_token_seconds",
    "From request arrival to the first generated text, per engine",
    ["engine"],
    buckets=LATENCY_BUCKETS,
)
INTER_TOKEN_LATENCY = Histogram(
    "switchyard_gateway_inter_token_latency_seconds",
    "Between consecutive streamed deltas, per engine",
    ["engine"],
    buckets=ITL_BUCKETS,
)
GENERATED_TOKENS = Counter("switchyard_gateway_generated_tokens", "Completion tokens, per engine", ["engine"])


def route_label(scope: Scope) -> str:
    """The route a request matched, as requests and errors are labelled (its path template)."""
    return str(getattr(scope.get("route"), "path", "unmatched"))
