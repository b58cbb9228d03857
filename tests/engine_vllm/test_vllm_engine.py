"""vLLM-only behaviour: its load options, min_tokens, load failures, and switching models in
one process without leaking memory, threads or file descriptors."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psutil
import pytest

from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import VLLM, VLLM_AVAILABLE, assert_runs_of, load_request, tokens_per_message
from tests.helpers import ServiceProcess, wait_until

pytestmark = pytest.mark.skipif(not VLLM_AVAILABLE, reason="vLLM is not installed (make test installs it)")

STREAM_INTERVAL = 4
PRESETS = """
models:
  demo-512:
    engine: vllm
    source: switchyard-demo
    aliases: [five-twelve]
    options: {max_model_len: 512, dtype: float32, kv_cache_memory_bytes: 67108864}
"""
PROMPT = "The quick brown fox jumps over the lazy dog."


def greedy(n: int, **stopping: object) -> pb.GenerateRequest:
    return pb.GenerateRequest(
        prompt=PROMPT,
        sampling=pb.SamplingParams(temperature=0.0),
        stopping=pb.StoppingCriteria(max_tokens=n, ignore_eos=True, **stopping),  # type: ignore[arg-type]
        output=pb.OutputOptions(return_token_ids=True),
    )


def finish(service: ServiceProcess, request: pb.GenerateRequest) -> tuple[list[int], pb.Finished]:
    responses = list(service.inference.Generate(request, timeout=120))
    return [t for r in responses for t in r.delta.token_ids], responses[-1].finished


@pytest.fixture(scope="module")
def service(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # With a stream interval: the other tests here read whole answers, whatever their messages.
    logs = tmp_path_factory.mktemp("vllm")
    (logs / "models.yaml").write_text(PRESETS)
    args = ["--model-roots", str(model_root), "--stream-interval", str(STREAM_INTERVAL)]
    args += ["--models-file", str(logs / "models.yaml")]
    started = ServiceProcess(VLLM.module, args, logs / "engine.log").start()
    yield started
    started.stop()


def test_load_with_explicit_options(service: ServiceProcess) -> None:
    options = control_pb2.VllmOptions(
        dtype="float32",
        max_model_len=1024,
        max_num_seqs=2,
        enforce_eager=True,
        kv_cache_memory_bytes=64 * 1024**2,
        tensor_parallel_size=1,
    )
    events = list(service.control.LoadModel(load_request(VLLM, vllm=options, served_model_name="small"), timeout=300))
    status = events[-1].status
    assert status.state == control_pb2.MODEL_STATE_LOADED and status.model == "small"
    assert status.max_model_len == 1024 and status.device == "cpu"
    assert status.engine_version.startswith("vllm ")
    # Four requests on two sequences: the rest wait their turn and all finish exactly.
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda n: finish(service, greedy(n))[1], [8, 16, 24, 32]))
    assert [d.usage.completion_tokens for d in done] == [8, 16, 24, 32]


def test_a_stream_interval_sends_runs_of_that_many_tokens(service: ServiceProcess) -> None:
    assert_runs_of(tokens_per_message(service, PROMPT, 21), STREAM_INTERVAL, 21)  # the model loaded above


def test_min_tokens_holds_back_stop_token_ids(service: ServiceProcess) -> None:
    ids, _ = finish(service, greedy(24))
    target = ids[2]
    _, early = finish(service, greedy(24, stop_token_ids=[target]))
    assert early.reason == pb.FINISH_REASON_STOP and early.usage.completion_tokens == ids.index(target) + 1
    _, held = finish(service, greedy(24, stop_token_ids=[target], min_tokens=10))
    assert held.usage.completion_tokens >= 10


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (control_pb2.VllmOptions(dtype="int3"), "vllm.dtype"),
        (control_pb2.VllmOptions(gpu_memory_utilization=1.5), "gpu_memory_utilization"),
        (control_pb2.VllmOptions(max_model_len=8), "max_model_len"),
        (control_pb2.VllmOptions(max_num_seqs=0), "max_num_seqs"),
        (control_pb2.VllmOptions(tensor_parallel_size=0), "tensor_parallel_size"),
    ],
)
def test_bad_options_are_invalid_argument(
    service: ServiceProcess, options: control_pb2.VllmOptions, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(service.control.LoadModel(load_request(VLLM, vllm=options), timeout=60))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (info.value.details() or "")


def test_a_load_vllm_refuses_ends_in_error_state(service: ServiceProcess) -> None:
    options = control_pb2.VllmOptions(dtype="float32", max_model_len=10**6, kv_cache_memory_bytes=64 * 1024**2)
    with pytest.raises(grpc.RpcError) as info:
        list(service.control.LoadModel(load_request(VLLM, vllm=options), timeout=300))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
    assert status.state == control_pb2.MODEL_STATE_ERROR and "max_model_len" in status.error
    assert VLLM.engine_children(service) == []


def footprint(service: ServiceProcess) -> tuple[float, int, int]:
    """RSS in MiB, threads and open file descriptors of the service process."""
    assert service.proc is not None
    proc = psutil.Process(service.proc.pid)
    return proc.memory_info().rss / 2**20, proc.num_threads(), proc.num_fds()


@pytest.mark.timeout(600)  # six vLLM loads, 20-40 s each on a busy CPU
def test_switching_models_repeatedly_leaks_nothing(service: ServiceProcess) -> None:
    """Also guards two leaks once seen: each unload waited 30 s for Python's resource tracker,
    and each unload that vLLM ended with SIGKILL kept two pipes open."""
    list(service.control.LoadModel(load_request(VLLM, served_model_name="switch-0"), timeout=300))
    finish(service, greedy(8))
    rss0, threads0, fds0 = footprint(service)
    for i in range(1, 6):
        events = list(service.control.LoadModel(load_request(VLLM, served_model_name=f"switch-{i}"), timeout=300))
        assert events[-1].status.model == f"switch-{i}"
        finish(service, greedy(8))
    rss5, threads5, fds5 = footprint(service)
    print(f"vLLM switch footprint: rss {rss0:.0f} -> {rss5:.0f} MiB, ", end="")
    print(f"threads {threads0} -> {threads5}, fds {fds0} -> {fds5}")
    assert threads5 <= threads0 + 2
    assert fds5 <= fds0 + 2
    assert rss5 - rss0 < 0.25 * rss0, (rss0, rss5)
    assert len(VLLM.engine_children(service)) >= 1
    assert "outlived the stop" not in service.log_path.read_text(errors="replace")


def test_a_huge_prompt_is_refused_before_it_is_tokenized(service: ServiceProcess) -> None:
    """8 MiB of text cannot fit the context: refused at once (tokenizing it took seconds),
    and the service answers on."""
    prompt = "日本語のテキスト and English words. " * (8 * 2**20 // 48)
    request = pb.GenerateRequest(prompt=prompt, stopping=pb.StoppingCriteria(max_tokens=4))
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        list(service.inference.Generate(request, timeout=600))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "cannot fit" in (info.value.details() or "")
    print(f"an 8 MiB prompt refused in {time.monotonic() - started:.2f}s")
    assert service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=60).statuses


def test_an_engine_process_killed_during_a_load_is_named_with_its_signal(service: ServiceProcess) -> None:
    """What issue 27 saw: a worker killed by SIGILL while the model warmed up answered a generic
    internal error. The load now names the process and the signal, and the status says it."""
    earlier = set(VLLM.engine_children(service))  # the loaded model's, going as this load evicts it
    loading = ThreadPoolExecutor(1).submit(
        lambda: list(service.control.LoadModel(load_request(VLLM, served_model_name="doomed"), timeout=300))
    )
    victims = wait_until(
        lambda: [pid for pid in VLLM.engine_children(service) if pid not in earlier], 240, "the new engine's processes"
    )
    os.kill(victims[-1], signal.SIGILL)
    with pytest.raises(grpc.RpcError) as info:
        loading.result(timeout=300)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
    assert "SIGILL" in (info.value.details() or "")
    status = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
    assert status.state == control_pb2.MODEL_STATE_ERROR and "SIGILL" in status.error
    wait_until(lambda: VLLM.engine_children(service) == [], 60, "the rest of the engine to be stopped")


def test_a_load_on_demand_of_a_preset_gets_its_options(service: ServiceProcess) -> None:
    """The models file (switchyard/engine/presets.py) on vLLM: named by its alias, the preset
    loads with its own max_model_len, listed under its name."""
    names = {m.name for m in service.control.ListModels(control_pb2.ListModelsRequest(), timeout=30).models}
    assert "demo-512" in names
    request = pb.GenerateRequest(
        model="five-twelve", prompt=PROMPT, stopping=pb.StoppingCriteria(max_tokens=3, ignore_eos=True)
    )
    assert list(service.inference.Generate(request, timeout=300))[-1].finished.usage.completion_tokens == 3
    status = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
    preset = next(m for m in status.models if m.name == "demo-512")
    assert preset.max_model_len == 512 and list(preset.aliases) == ["five-twelve"]
