"""The Grafana dashboard (deploy/grafana) asks only for metrics that exist: switchyard's own
are checked here against the code's registry; the engines' own (vllm:, llamacpp:) against a
real scrape in tests/e2e/test_engine_metrics.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import gateway.metrics  # noqa: F401  (registers the gateway's families)
import switchyard.engine.metrics  # noqa: F401  (and the engine services')

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "switchyard-dashboard.json"
NAME = re.compile(r"\b((?:switchyard_|vllm:|llamacpp:)[a-z_:]*[a-z])\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def dashboard_metrics(prefix: str = "") -> set[str]:
    """Every metric name the dashboard's queries use (those starting with ``prefix``)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    names = {name for p in panels for t in p["targets"] for name in NAME.findall(t["expr"])}
    return {name for name in names if name.startswith(prefix)}


def test_the_dashboard_asks_for_switchyards_metrics_as_they_are_named() -> None:
    exported = {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("switchyard_")
        for suffix in SUFFIXES.get(family.type, ())
    }
    asked = dashboard_metrics("switchyard_")
    assert asked and asked <= exported, asked - exported
    assert dashboard_metrics("vllm:") and dashboard_metrics("llamacpp:")  # checked by the e2e scrape
