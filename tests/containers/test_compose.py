"""deploy/compose.yaml (with the CPU vLLM override) run by podman-compose on the images built here.

The tests run in order on one stack: it comes up healthy, serves the seed API and the openai SDK
on both engines, brings a killed container back by its restart policy, and leaves nothing behind.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.runtime.net import free_port
from tests.containers.conftest import FIGURES
from tests.containers.podman import ENV, Built, podman
from tests.helpers import ROOT, openai_client, wait_until

# Each test's own body; the image builds (the `images` fixture) have limits of their own
# (podman.BUILD_LIMITS_S), and so do the waits of the module's fixtures.
pytestmark = pytest.mark.timeout(1200, func_only=True)

COMPOSE_FILES = ("deploy/compose.yaml", "deploy/compose.vllm-cpu.yaml")
SERVICES = ("engine-llamacpp", "engine-vllm", "router", "gateway")
# The seed API's load bodies, as a user on a CPU host sends them (vLLM: float32, a small KV cache).
LOADS: dict[str, dict[str, str | int]] = {
    "llamacpp": {"model_path": "switchyard-demo.gguf", "served_model_name": "demo-llamacpp"},
    "vllm": {
        "model_path": "switchyard-demo",
        "served_model_name": "demo-vllm",
        "dtype": "float32",
        "kv_cache_memory_bytes": 128 * 1024**2,
    },
}
# vLLM's start-up (importing torch and vLLM) in a container on a busy 2-core machine.
HEALTHY_WITHIN_S = 300


class ComposeStack:
    """One compose project: the four services on their own network, the gateway on a free port."""

    def __init__(self, models: Path) -> None:
        self.project = f"switchyard-test-{os.getpid()}"
        self.port = free_port()
        self.env = {k: v for k, v in ENV.items() if not k.startswith("SWITCHYARD_")}
        self.env.update(MODELS_DIR=str(models), GATEWAY_PORT=str(self.port), ROUTER_PORT=str(free_port()))
        self.url = f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        files = [arg for name in COMPOSE_FILES for arg in ("-f", str(ROOT / name))]
        cmd = [sys.executable, "-m", "podman_compose", "-p", self.project, *files, *args]
        result = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        output = result.stdout[-3000:] + result.stderr[-3000:]
        assert result.returncode == 0 or not check, f"podman-compose {' '.join(args)}:\n{output}"
        return result

    def remove_leftovers(self) -> None:
        """After a failed test: whatever `down` left, dependants first (--depend)."""
        if names := self.containers():
            podman("rm", "--force", "--depend", "--time=5", *names, check=False)
        podman("network", "rm", "--force", f"{self.project}_default", check=False)

    def containers(self, service: str | None = None) -> list[str]:
        filters = ["--filter", f"label=io.podman.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return podman("ps", "-a", *filters, "--format", "{{.Names}}").stdout.split()

    def container(self, service: str) -> str:
        (name,) = self.containers(service)
        return name

    def healthy(self, service: str) -> bool:
        """The image's own HEALTHCHECK, run now (podman schedules it with systemd, absent here)."""
        return podman("healthcheck", "run", self.container(service), check=False).returncode == 0

    def inspect(self, service: str, field: str) -> str:
        return podman("inspect", "--format", "{{" + field + "}}", self.container(service)).stdout.strip()

    def wait_healthy(self) -> None:
        for service in SERVICES:
            wait_until(
                functools.partial(self.healthy, service), HEALTHY_WITHIN_S, f"{service} to pass its health check", 1
            )
        wait_until(self.gateway_answers, 60, "the gateway on its published port", 0.2)
        # podman-compose on podman 4.3 starts in order without waiting for health (no
        # `podman wait --condition=healthy`), so the router may be backing off from an engine
        # that came up after it; it reconnects within retry_backoff_max_s.
        wait_until(self.engines_reachable, 60, "the router to reach both engines", 0.2)

    def engine_state(self, engine: str) -> str:
        state = httpx.get(f"{self.url}/v1/status", timeout=10).json()[engine]["status"]
        assert isinstance(state, str)
        return state

    def engines_reachable(self) -> bool:
        return all(self.engine_state(engine) != "error" for engine in LOADS)

    def gateway_answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def load(self, engine: str) -> None:
        answer = httpx.post(f"{self.url}/v1/models/load", json={"engine": engine, **LOADS[engine]}, timeout=600)
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def stack(images: dict[str, Built], models_volume: Path) -> Iterator[ComposeStack]:
    stack = ComposeStack(models_volume)
    start = time.monotonic()
    try:
        stack.compose("up", "-d", "--no-build")
        stack.wait_healthy()
        FIGURES.append(f"compose: up to four healthy containers in {time.monotonic() - start:.0f} s")
        yield stack
    finally:
        stack.compose("down", "-t", "10", check=False)
        stack.remove_leftovers()


def test_stack_serves_the_seed_api_and_the_openai_sdk_on_both_engines(stack: ComposeStack) -> None:
    for engine in LOADS:
        start = time.monotonic()
        stack.load(engine)
        FIGURES.append(f"compose: {engine} demo model loaded through the API in {time.monotonic() - start:.1f} s")
    status = httpx.get(f"{stack.url}/v1/status", timeout=10).json()
    assert {status[e]["status"] for e in LOADS} == {"loaded"}, status
    assert httpx.get(f"{stack.url}/ready", timeout=10).status_code == 200

    client = openai_client(f"{stack.url}/v1", 120)
    for engine, load in LOADS.items():
        # The README's seed example, then the SDK: a chat completion, streamed.
        body = {"prompt": "こんにちは", "engine": engine, "max_tokens": 16, "temperature": 0.7, "top_p": 0.95}
        answer = httpx.post(f"{stack.url}/v1/completions", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["completion_tokens"] > 0
        chunks = client.chat.completions.create(
            model=str(load["served_model_name"]),
            messages=[{"role": "user", "content": "Say hi"}],
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = [chunk.usage for chunk in chunks if chunk.usage]
        assert usage and usage[-1].completion_tokens > 0, engine


def test_a_killed_container_is_restarted_by_its_policy(stack: ComposeStack) -> None:
    service = "engine-llamacpp"
    before = stack.inspect(service, ".State.StartedAt")
    pid = int(stack.inspect(service, ".State.Pid"))
    killed = time.monotonic()
    os.kill(pid, 9)  # the container's main process, as a crash would end it
    wait_until(
        lambda: (
            stack.inspect(service, ".State.StartedAt") != before and stack.inspect(service, ".State.Running") == "true"
        ),
        120,
        f"{service} to be started again (restart: unless-stopped)",
        0.2,
    )
    wait_until(lambda: stack.healthy(service), HEALTHY_WITHIN_S, f"{service} healthy after its restart", 0.5)
    # The restarted engine starts empty (no SWITCHYARD_LOAD_MODEL here): once the router has
    # reconnected (through DNS, within its back-off) it reports it idle. Load and serve again.
    wait_until(lambda: stack.engine_state("llamacpp") == "idle", 60, "the router to see the restarted engine", 0.2)
    stack.load("llamacpp")
    body = {"prompt": "hi", "model": "demo-llamacpp", "max_tokens": 4}
    assert httpx.post(f"{stack.url}/v1/completions", json=body, timeout=120).status_code == 200
    FIGURES.append(
        f"compose: {service} killed (kill -9), restarted, reloaded and serving in {time.monotonic() - killed:.1f} s"
    )


def test_down_leaves_nothing(stack: ComposeStack) -> None:
    stack.compose("down", "-t", "30")
    assert stack.containers() == []
    networks = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [n for n in networks if n.startswith(stack.project)], networks
    pods = podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
    assert not [p for p in pods if stack.project in p], pods  # podman-compose names it pod_<project>
