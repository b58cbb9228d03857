"""Failures end to end: an engine killed mid-stream, and two llama.cpp replicas behind the router
with one of them killed."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from switchyard.v1 import common_pb2, control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import LLAMACPP, load_request
from tests.e2e.conftest import SERVED, Stack
from tests.helpers import ServiceProcess, wait_until


def test_engine_killed_mid_stream(stack: Stack) -> None:
    """The client gets an error event, status says error, and once the engine is back (its
    restart policy) the next request is answered."""
    engine = stack.engines["llamacpp"]
    child = next(p for p in engine.children() if p.name() == "llama-server")
    body = {"prompt": "hi", "model": SERVED["llamacpp"], "max_tokens": 3000, "ignore_eos": True, "stream": True}
    seen_error = False
    with httpx.stream("POST", f"{stack.url}/v1/completions", json=body, timeout=120) as answer:
        lines = answer.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        child.send_signal(signal.SIGKILL)
        payloads = [line[6:] for line in lines if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    errors = [json.loads(p)["error"] for p in payloads[:-1] if "error" in json.loads(p)]
    assert errors and errors[0]["code"] == 503
    seen_error = stack.engine_status("llamacpp")["status"] in ("error", "loading")
    wait_until(lambda: stack.engine_status("llamacpp")["status"] == "loaded", 120, "llama.cpp to come back")
    again = {"prompt": "hi", "model": SERVED["llamacpp"], "max_tokens": 4}
    assert httpx.post(f"{stack.url}/v1/completions", json=again, timeout=60).status_code == 200
    assert seen_error or "exited unexpectedly" in engine.log_tail(200)


def requests_served(metrics_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    found = re.search(r'switchyard_engine_requests_total\{code="OK",engine="llamacpp"\} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def replicas(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServiceProcess]]:
    logs = tmp_path_factory.mktemp("replicas")
    engines = []
    for i in range(2):
        from switchyard.runtime.net import free_port

        metrics_port = free_port()
        engine = ServiceProcess(
            LLAMACPP.module,
            ["--model-roots", str(model_root), "--metrics-port", str(metrics_port), "--no-restart-on-crash"],
            logs / f"engine{i}.log",
        ).start()
        engine.metrics_port = metrics_port  # type: ignore[attr-defined]
        engines.append(engine)
    # The second replica is named by DNS (localhost), as a headless Service's replicas are.
    backends = f"llamacpp={engines[0].address},llamacpp=dns:localhost:{engines[1].port}"
    router = ServiceProcess(
        "services.router", ["--backends", backends, "--resolve-interval-s", "0.5"], logs / "router.log"
    ).start()
    yield [router, *engines]
    for service in (router, *engines):
        service.stop()


def test_router_errors_say_what_is_missing(replicas: list[ServiceProcess]) -> None:
    """Before any load: each refusal is a status code with a message naming the gap."""
    router = replicas[0]
    vllm = common_pb2.ENGINE_VLLM
    cases: list[tuple[Callable[[], object], grpc.StatusCode, str]] = [
        (lambda: list(router.inference.Generate(pb.GenerateRequest(prompt="hi"), timeout=30)),
         grpc.StatusCode.FAILED_PRECONDITION, "no model loaded on any backend"),
        (lambda: list(router.inference.Generate(pb.GenerateRequest(prompt="hi", engine=vllm), timeout=30)),
         grpc.StatusCode.UNAVAILABLE, "no vllm backend is configured"),
        (lambda: list(router.control.LoadModel(control_pb2.LoadModelRequest(model_path="x.gguf"), timeout=30)),
         grpc.StatusCode.INVALID_ARGUMENT, "needs engine"),
        (lambda: router.control.UnloadModel(control_pb2.UnloadModelRequest(engine=vllm, all=True), timeout=30),
         grpc.StatusCode.UNAVAILABLE, "no vllm backend is reachable"),
    ]  # fmt: skip
    for call, code, words in cases:
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == code and words in (info.value.details() or ""), info.value.details()


def test_two_replicas_share_the_load_and_survive_one_dying(replicas: list[ServiceProcess]) -> None:
    router, first, second = replicas
    events = list(router.control.LoadModel(load_request(LLAMACPP), timeout=300))
    assert {e.status.backend for e in events} == {first.address, second.address}  # fanned out to both
    assert events[-1].state == control_pb2.MODEL_STATE_LOADED
    wait_until(
        lambda: (
            len(
                [
                    s
                    for s in router.control.GetStatus(control_pb2.GetStatusRequest(), timeout=5).statuses
                    if s.state == control_pb2.MODEL_STATE_LOADED
                ]
            )
            == 2
        ),
        60,
        "both replicas loaded",
    )
    request = pb.GenerateRequest(prompt="hi", stopping=pb.StoppingCriteria(max_tokens=2, ignore_eos=True))
    for _ in range(20):
        assert list(router.inference.Generate(request, timeout=60))[-1].finished.usage.completion_tokens == 2
    served = [requests_served(e.metrics_port) for e in (first, second)]  # type: ignore[attr-defined]
    assert sum(served) == 20 and min(served) >= 1, served
    assert second.proc is not None
    orphan = next(p for p in second.children() if p.name() == "llama-server")
    second.proc.send_signal(signal.SIGKILL)
    second.proc.wait()
    wait_until(lambda: not orphan.is_running(), 30, "the dead replica's llama-server to go too")
    for _ in range(10):
        assert list(router.inference.Generate(request, timeout=60))[-1].finished.usage.completion_tokens == 2
    statuses = router.control.GetStatus(control_pb2.GetStatusRequest(), timeout=5).statuses
    dead = next(s for s in statuses if s.backend == second.address)
    assert dead.state == control_pb2.MODEL_STATE_ERROR and "unreachable" in dead.error
