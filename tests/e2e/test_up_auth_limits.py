"""``switchyard up`` end to end, and a gateway with API keys and a small request-size limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psutil
import pytest

from switchyard.runtime.net import free_port
from switchyard.v1 import control_pb2, control_pb2_grpc
from tests.e2e.conftest import SERVED, Stack
from tests.helpers import ROOT, ServiceProcess, wait_until


def test_switchyard_up_with_api_keys_serves_heals_and_stops_everything_on_ctrl_c(
    model_root: Path, tmp_path: Path
) -> None:
    """With keys set, up still loads its demo model (through the router), the gateway asks
    clients for a key and the router a service token (made for the run); an engine service
    killed with -9 is restarted and serves again (its model loaded on demand); Ctrl-C leaves
    nothing behind."""
    port = free_port()
    ports = [str(free_port()) for _ in range(2)]
    log_path = tmp_path / "up.log"
    log = log_path.open("wb")
    env = {**os.environ, "SWITCHYARD_API_KEYS": "user-key", "SWITCHYARD_ADMIN_KEYS": "admin-key"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchyard", "up", "--engines", "llamacpp", "--port", str(port),
         "--router-port", ports[0], "--llamacpp-port", ports[1], "--models", str(model_root)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        body = {"prompt": "こんにちは", "engine": "llamacpp", "max_tokens": 8}
        url = f"http://127.0.0.1:{port}/v1/completions"

        def answered() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"switchyard up exited with {proc.returncode}")
            try:
                return httpx.post(url, json=body, headers={"Authorization": "Bearer user-key"}).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answered, 300, "switchyard up to answer a completion")
        assert httpx.post(url, json=body, timeout=30).status_code == 401
        with grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:  # keys set: a token was made
            with pytest.raises(grpc.RpcError) as refused:
                control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        supervisor = psutil.Process(proc.pid)
        parts = supervisor.children(recursive=True)
        holders = sorted(" ".join(p.cmdline()[:3]) for p in parts if "SWITCHYARD_API_KEYS" in p.environ())
        assert len(holders) == 1 and "gateway" in holders[0], holders  # not the router, engines or llama-server
        engine = next(p for p in supervisor.children(recursive=True) if "services.engine_llamacpp" in p.cmdline())
        killed = time.monotonic()
        engine.kill()
        wait_until(lambda: not engine.is_running(), 30, "the engine service to die")
        wait_until(answered, 120, "the restarted engine service to answer")
        print(f"switchyard up: engine_llamacpp served again {time.monotonic() - killed:.1f}s after kill -9")
        assert b"engine_llamacpp restarted" in log_path.read_bytes()
        status = httpx.get(f"http://127.0.0.1:{port}/v1/status", headers={"Authorization": "Bearer user-key"})
        assert status.json()["llamacpp"]["replicas"][0]["service_restarts"] == 1

        parts = supervisor.children(recursive=True)
        assert len(parts) >= 4  # engine, llama-server, router, gateway
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0
        _, alive = psutil.wait_procs(parts, timeout=30)
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def locked(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A second gateway over the same router, with keys and a 2 KiB body limit."""
    gateway = ServiceProcess(
        "gateway",
        [
            "--router",
            stack.router.address,
            "--api-keys",
            "user-key",
            "--admin-keys",
            "admin-key",
            "--max-request-bytes",
            "2048",
        ],
        tmp_path_factory.mktemp("locked") / "gateway.log",
        http=True,
    ).start()
    yield gateway
    gateway.stop()


def test_api_keys(locked: ServiceProcess) -> None:
    body = {"prompt": "hi", "model": SERVED["llamacpp"], "max_tokens": 2}
    assert httpx.post(f"{locked.url}/v1/completions", json=body).status_code == 401
    bad = httpx.post(f"{locked.url}/v1/completions", json=body, headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    ok = httpx.post(f"{locked.url}/v1/completions", json=body, headers={"Authorization": "Bearer user-key"}, timeout=60)
    assert ok.status_code == 200
    assert httpx.get(f"{locked.url}/health").status_code == 200  # liveness needs no key
    load = {"model_path": "switchyard-demo.gguf", "engine": "llamacpp", "served_model_name": SERVED["llamacpp"]}
    user = httpx.post(f"{locked.url}/v1/models/load", json=load, headers={"Authorization": "Bearer user-key"})
    assert user.status_code == 403 and "admin" in user.json()["error"]["message"]
    admin = httpx.post(
        f"{locked.url}/v1/models/load", json=load, headers={"Authorization": "Bearer admin-key"}, timeout=600
    )
    assert admin.status_code == 200, admin.text


def test_request_size_limit(locked: ServiceProcess) -> None:
    body = {"prompt": "x" * 5000, "model": SERVED["llamacpp"]}
    answer = httpx.post(f"{locked.url}/v1/completions", json=body, headers={"Authorization": "Bearer user-key"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == 413
