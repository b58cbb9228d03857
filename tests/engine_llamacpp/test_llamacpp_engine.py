"""llama.cpp-specific behaviour: the child process, crashes and restarts, shutdown, and our
streamed text against llama-server's own non-streamed answer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest

from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import LLAMACPP, assert_runs_of, load_request, tokens_per_message
from tests.helpers import ServiceProcess, StatusFollower, wait_until

STREAM_INTERVAL = 4


def start(model_root: Path, log_dir: Path, *args: str) -> ServiceProcess:
    service = ServiceProcess(LLAMACPP.module, ["--model-roots", str(model_root), *args], log_dir / "engine.log")
    service.start()
    events = list(service.control.LoadModel(load_request(LLAMACPP), timeout=300))
    assert events[-1].state == control_pb2.MODEL_STATE_LOADED
    return service


def llama_server_of(service: ServiceProcess) -> psutil.Process:
    children = [p for p in service.children() if p.name() == "llama-server"]
    assert len(children) == 1, children
    return children[0]


def status_of(service: ServiceProcess) -> control_pb2.EngineStatus:
    return service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]


@pytest.fixture(scope="module")
def restarting(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # With a stream interval: the other tests here need only the first delta or whole answers.
    args = ["--restart-backoff-s", "1", "--stream-interval", str(STREAM_INTERVAL)]
    service = start(model_root, tmp_path_factory.mktemp("restarting"), *args)
    yield service
    service.stop()


def test_a_stream_interval_sends_runs_of_that_many_tokens(restarting: ServiceProcess) -> None:
    # 400 tokens: more events than one network read holds, so a fast model still sends several
    assert_runs_of(tokens_per_message(restarting, "Once upon a time", 400), STREAM_INTERVAL, 400)


def test_status_shows_the_binary_version(restarting: ServiceProcess) -> None:
    assert status_of(restarting).engine_version.startswith("llama-server ")


def test_killed_child_is_seen_at_once_and_restarted(restarting: ServiceProcess) -> None:
    old = llama_server_of(restarting)
    watch = restarting.control.WatchStatus(control_pb2.WatchStatusRequest(), timeout=120)
    assert next(watch).status.state == control_pb2.MODEL_STATE_LOADED
    stream = restarting.inference.Generate(
        pb.GenerateRequest(prompt="hi", stopping=pb.StoppingCriteria(max_tokens=4000, ignore_eos=True)), timeout=120
    )
    assert next(stream).HasField("delta")
    follower = StatusFollower(watch, control_pb2.MODEL_STATE_LOADED, after=control_pb2.MODEL_STATE_ERROR)
    old.send_signal(signal.SIGKILL)
    with pytest.raises(grpc.RpcError) as info:
        list(stream)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    states = follower.join(120)
    errors = [s for s in states if s.state == control_pb2.MODEL_STATE_ERROR]
    assert errors and not errors[0].process_alive and "exited unexpectedly" in errors[0].error
    assert states[-1].state == control_pb2.MODEL_STATE_LOADED and states[-1].model == LLAMACPP.served_name
    assert llama_server_of(restarting).pid != old.pid
    request = pb.GenerateRequest(prompt="hi", stopping=pb.StoppingCriteria(max_tokens=3, ignore_eos=True))
    finished = list(restarting.inference.Generate(request, timeout=60))[-1].finished
    assert finished.usage.completion_tokens == 3


def test_without_restart_the_error_stays(model_root: Path, tmp_path: Path) -> None:
    service = start(model_root, tmp_path, "--no-restart-on-crash")
    try:
        llama_server_of(service).send_signal(signal.SIGKILL)
        wait_until(lambda: status_of(service).state == control_pb2.MODEL_STATE_ERROR, 30, "the crash to show")
        status = status_of(service)
        assert not status.process_alive
        with pytest.raises(grpc.RpcError) as info:
            list(service.inference.Generate(pb.GenerateRequest(prompt="hi"), timeout=10))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        events = list(service.control.LoadModel(load_request(LLAMACPP), timeout=300))
        assert events[-1].state == control_pb2.MODEL_STATE_LOADED  # a load clears the error
    finally:
        service.stop()


def test_a_corrupt_gguf_fails_with_the_childs_log(model_root: Path, tmp_path: Path) -> None:
    broken = model_root / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    service = ServiceProcess(LLAMACPP.module, ["--model-roots", str(model_root)], tmp_path / "engine.log").start()
    try:
        with pytest.raises(grpc.RpcError) as info:
            list(service.control.LoadModel(load_request(LLAMACPP, model_path="broken.gguf"), timeout=120))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        status = status_of(service)
        assert status.state == control_pb2.MODEL_STATE_ERROR and not status.process_alive
        assert "llama-server exited" in status.error and len(status.error.splitlines()) > 1
        assert service.children() == []
    finally:
        service.stop()
        broken.unlink()


def test_sigterm_lets_a_running_stream_finish_and_leaves_no_process(model_root: Path, tmp_path: Path) -> None:
    service = start(model_root, tmp_path, "--shutdown-grace-s", "60")
    child = llama_server_of(service)
    request = pb.GenerateRequest(prompt="hi", stopping=pb.StoppingCriteria(max_tokens=200, ignore_eos=True))
    stream = service.inference.Generate(request, timeout=120)
    assert next(stream).HasField("delta")
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    finished = [r.finished for r in stream if r.HasField("finished")]
    assert finished and finished[0].usage.completion_tokens == 200
    assert service.stop() == 0
    assert not child.is_running()


def test_grpcurl_lists_the_services_and_streams_a_generation(restarting: ServiceProcess) -> None:
    """The issue's check by hand, as a test: grpcurl (from the dev install) over reflection."""
    grpcurl = str(Path(sys.executable).parent / "grpcurl")
    listed = subprocess.run(
        [grpcurl, "-plaintext", restarting.address, "list"], capture_output=True, text=True, check=True
    )
    assert {
        "switchyard.v1.Inference",
        "switchyard.v1.Control",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= set(listed.stdout.split())
    body = json.dumps({"prompt": "日本語", "stopping": {"max_tokens": 5, "ignore_eos": True}})
    generated = subprocess.run(
        [grpcurl, "-plaintext", "-d", body, restarting.address, "switchyard.v1.Inference/Generate"],
        capture_output=True,
        text=True,
        check=True,
    )
    messages = [json.loads(chunk) for chunk in generated.stdout.replace("}\n{", "}\x00{").split("\x00")]
    assert "delta" in messages[0] and messages[-1]["finished"]["usage"]["completion_tokens"] == 5


def test_a_killed_service_takes_its_llama_server_with_it(model_root: Path, tmp_path: Path) -> None:
    service = start(model_root, tmp_path)
    child = llama_server_of(service)
    assert service.proc is not None
    service.proc.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel must
    service.proc.wait()
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 30, "llama-server to die")


def test_a_full_model_refuses_with_retry_after_and_the_admitted_finish(model_root: Path, tmp_path: Path) -> None:
    """max_in_flight on the real engine: the request over the bound gets RESOURCE_EXHAUSTED
    with retry-after before llama-server sees it; the two admitted run to their end."""
    service = start(model_root, tmp_path, "--max-in-flight", "2")
    try:
        long = pb.GenerateRequest(prompt="Hello", stopping=pb.StoppingCriteria(max_tokens=1500, ignore_eos=True))
        calls = [service.inference.Generate(long, timeout=300) for _ in range(2)]
        firsts = [next(call) for call in calls]  # both admitted and generating
        assert all(first.HasField("delta") for first in firsts)
        with pytest.raises(grpc.RpcError) as refused:
            list(service.inference.Generate(long, timeout=60))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_in_flight" in (refused.value.details() or "")
        trailing: Any = refused.value.trailing_metadata() or ()
        assert ("retry-after", "1") in [tuple(pair) for pair in trailing]
        assert status_of(service).max_in_flight == 2
        for call in calls:
            *_, last = call
            assert last.finished.usage.completion_tokens == 1500
    finally:
        service.stop()
