"""The gateway as several worker processes on one port: every worker answers, and /metrics
adds up what all of them counted."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import SERVED, Stack
from tests.helpers import ServiceProcess, wait_until

WORKERS = 3


@pytest.fixture(scope="module")
def workers(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("workers") / "gateway.log"
    gateway = ServiceProcess("gateway", ["--router", stack.router.address, "--workers", str(WORKERS)], log, http=True)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def completions_counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "switchyard_gateway_requests_total" and sample.labels.get("route") == "/v1/completions"
    )


def test_every_worker_serves_and_metrics_add_up(workers: ServiceProcess) -> None:
    assert workers.proc is not None
    gateway = psutil.Process(workers.proc.pid)
    wait_until(lambda: len(gateway.children()) >= WORKERS, 60, "the workers to start")
    body = {"model": SERVED["llamacpp"], "prompt": "日本", "max_tokens": 4, "stream": True}
    sent = 24
    with httpx.Client(base_url=workers.url, timeout=60) as client:
        for _ in range(sent):
            answer = client.post("/v1/completions", json=body, headers={"Connection": "close"})  # a new connection each
            assert answer.status_code == 200 and answer.text.endswith("data: [DONE]\n\n")
    assert completions_counted(workers.url) == sent
