"""The whole stack as real processes: engine services, the router and the gateway.

Each engine serves the demo model under its own name so that ``model`` alone picks an engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conformance.engines import LLAMACPP, VLLM, VLLM_AVAILABLE, EngineUnderTest
from tests.helpers import ServiceProcess

SERVED = {"llamacpp": "demo-llamacpp", "vllm": "demo-vllm"}
E2E_ENGINES = [LLAMACPP, VLLM] if VLLM_AVAILABLE else [LLAMACPP]


@dataclass
class Stack:
    engines: dict[str, ServiceProcess]
    router: ServiceProcess
    gateway: ServiceProcess

    @property
    def url(self) -> str:
        return self.gateway.url

    def status(self) -> dict[str, object]:
        answer = httpx.get(f"{self.url}/v1/status", timeout=10)
        answer.raise_for_status()
        body: dict[str, object] = answer.json()
        return body

    def engine_status(self, engine: str) -> dict[str, object]:
        value = self.status()[engine]
        assert isinstance(value, dict)
        return value


def load_body(engine: EngineUnderTest) -> dict[str, object]:
    body: dict[str, object] = {
        "engine": engine.name,
        "model_path": engine.model,
        "served_model_name": SERVED[engine.name],
    }
    if engine.name == "vllm":
        body.update(dtype="float32", kv_cache_memory_bytes=128 * 1024**2)
    return body


def start_stack(
    model_root: Path,
    logs: Path,
    gateway_args: list[str] | None = None,
    engine_args: dict[str, list[str]] | None = None,
) -> Stack:
    engines = {
        e.name: ServiceProcess(
            e.module, ["--model-roots", str(model_root), *(engine_args or {}).get(e.name, [])], logs / f"{e.name}.log"
        ).start()
        for e in E2E_ENGINES
    }
    backends = ",".join(f"{name}={service.address}" for name, service in engines.items())
    router = ServiceProcess("services.router", ["--backends", backends], logs / "router.log").start()
    gateway = ServiceProcess(
        "gateway", ["--router", router.address, *(gateway_args or [])], logs / "gateway.log", http=True
    ).start()
    return Stack(engines, router, gateway)


def stop_stack(stack: Stack) -> None:
    for service in (stack.gateway, stack.router, *stack.engines.values()):
        service.stop()


@pytest.fixture(scope="session")
def stack(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack with the demo model loaded on every engine (one per test session)."""
    started = start_stack(model_root, tmp_path_factory.mktemp("stack"))
    try:
        for engine in E2E_ENGINES:
            answer = httpx.post(f"{started.url}/v1/models/load", json=load_body(engine), timeout=600)
            assert answer.status_code == 200, answer.text
        yield started
    finally:
        stop_stack(started)
