"""Several models per engine, on the real engines: loaded on demand, waited for while loading,
kept resident side by side, evicted least recently used first, unloaded when idle, served
under aliases; failures end in ERROR; an unload returns only once the model's processes are
gone; a killed engine service leaves no process behind."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psutil
import pytest

from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import ENGINES, EngineUnderTest
from tests.conftest import SECOND
from tests.helpers import ServiceProcess, wait_until

FIRST = "switchyard-demo"
LOADED, ERROR = control_pb2.MODEL_STATE_LOADED, control_pb2.MODEL_STATE_ERROR
# vLLM on CPU: float32 (comparable with llama.cpp) and a small KV cache per model, so that
# several models fit in memory.
VLLM_ARGS = ["--default-dtype", "float32", "--cpu-kv-cache-bytes", str(96 * 1024**2)]


@pytest.fixture(scope="module", params=ENGINES, ids=[e.name for e in ENGINES])
def engine(request: pytest.FixtureRequest) -> EngineUnderTest:
    return request.param  # type: ignore[no-any-return]


def start(engine: EngineUnderTest, root: Path, log: Path, *args: str) -> ServiceProcess:
    extra = VLLM_ARGS if engine.name == "vllm" else []
    return ServiceProcess(engine.module, ["--model-roots", str(root), *extra, *args], log).start()


@pytest.fixture(scope="module")
def service(
    engine: EngineUnderTest, two_model_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """An engine service holding up to two models, none loaded at start."""
    started = start(engine, two_model_root, tmp_path_factory.mktemp("lifecycle") / "engine.log", "--max-models", "2")
    yield started
    started.stop()


def greedy(model: str, n: int = 12) -> pb.GenerateRequest:
    return pb.GenerateRequest(
        model=model,
        prompt="The quick brown fox",
        sampling=pb.SamplingParams(temperature=0.0),
        stopping=pb.StoppingCriteria(max_tokens=n, ignore_eos=True),
        output=pb.OutputOptions(return_token_ids=True),
    )


def token_ids(service: ServiceProcess, request: pb.GenerateRequest) -> list[int]:
    responses = list(service.inference.Generate(request, timeout=600))
    assert responses[-1].finished.usage.completion_tokens == request.stopping.max_tokens
    return [t for r in responses for t in r.delta.token_ids]


def models(service: ServiceProcess) -> dict[str, control_pb2.ModelStatus]:
    status = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
    return {m.name: m for m in status.models}


def test_requests_sent_while_a_model_loads_on_demand_all_succeed(service: ServiceProcess) -> None:
    assert models(service) == {}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: token_ids(service, greedy(FIRST)), range(8)))
    assert all(a == answers[0] for a in answers)
    assert list(models(service)) == [FIRST] and models(service)[FIRST].state == LOADED


def test_two_models_resident_and_interleaved(service: ServiceProcess, engine: EngineUnderTest) -> None:
    first = token_ids(service, greedy(FIRST))
    second = token_ids(service, greedy(SECOND))  # loaded on demand beside the first
    assert first != second  # other weights, other tokens
    assert {name: m.state for name, m in models(service).items()} == {FIRST: LOADED, SECOND: LOADED}
    requests = [greedy(FIRST), greedy(SECOND)] * 6
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda r: token_ids(service, r), requests))
    assert answers == [first, second] * 6
    assert len(engine.engine_children(service)) >= 2


def test_lru_eviction_at_max_models_and_aliases(service: ServiceProcess, engine: EngineUnderTest) -> None:
    token_ids(service, greedy(SECOND))
    token_ids(service, greedy(FIRST))  # the second model is now the least recently used
    request = control_pb2.LoadModelRequest(
        engine=engine.kind, model_path=engine.model, served_model_name="third", aliases=["gpt-4o-mini"]
    )
    events = list(service.control.LoadModel(request, timeout=600))
    assert events[-1].state == LOADED
    assert set(models(service)) == {FIRST, "third"}
    assert models(service)["third"].aliases == ["gpt-4o-mini"]
    assert token_ids(service, greedy("gpt-4o-mini")) == token_ids(service, greedy(FIRST))  # same weights


def test_unload_returns_only_once_the_models_processes_are_gone(
    service: ServiceProcess, engine: EngineUnderTest
) -> None:
    before = set(engine.engine_children(service))
    service.control.UnloadModel(control_pb2.UnloadModelRequest(model="third"), timeout=120)
    after = set(engine.engine_children(service))  # no waiting: gone when the call returns
    assert after < before and after
    assert set(models(service)) == {FIRST}
    with pytest.raises(grpc.RpcError) as info:
        service.control.UnloadModel(control_pb2.UnloadModelRequest(model="third"), timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_keep_alive_unloads_an_idle_model_but_not_a_busy_one(service: ServiceProcess, engine: EngineUnderTest) -> None:
    keep_alive = 0.05
    request = control_pb2.LoadModelRequest(
        engine=engine.kind, model_path=engine.model.replace(FIRST, SECOND), keep_alive_s=keep_alive
    )
    assert list(service.control.LoadModel(request, timeout=600))[-1].state == LOADED
    assert models(service)[SECOND].keep_alive_s == keep_alive
    # A request busy for several times the keep-alive finishes whole: the model stayed.
    responses = list(service.inference.Generate(greedy(SECOND, 1000), timeout=600))
    finished = responses[-1].finished
    assert finished.reason == pb.FINISH_REASON_LENGTH and finished.usage.completion_tokens == 1000
    assert finished.timings.total_ms > 3 * keep_alive * 1000  # it really outlived the keep-alive
    wait_until(lambda: SECOND not in models(service), 120, "the idle model to be unloaded")
    assert set(models(service)) == {FIRST}


def test_a_failed_load_ends_in_error_with_its_cause_and_lists_nothing_loaded(
    service: ServiceProcess, engine: EngineUnderTest
) -> None:
    before = set(engine.engine_children(service))
    broken = "broken.gguf" if engine.name == "llamacpp" else "broken"
    request = control_pb2.LoadModelRequest(engine=engine.kind, model_path=broken)
    with pytest.raises(grpc.RpcError) as info:
        list(service.control.LoadModel(request, timeout=600))
    assert info.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INTERNAL)
    failed = models(service)["broken"]
    assert failed.state == ERROR and failed.error and not failed.process_alive
    listed = service.control.ListModels(control_pb2.ListModelsRequest(), timeout=10).models
    entry = next(m for m in listed if m.name == "broken")
    assert not entry.loaded and entry.state == ERROR
    assert set(engine.engine_children(service)) <= before


def test_a_killed_engine_service_leaves_no_process_behind(
    engine: EngineUnderTest, two_model_root: Path, tmp_path: Path
) -> None:
    service = start(engine, two_model_root, tmp_path / "engine.log")
    try:
        token_ids(service, greedy(FIRST, 2))  # loaded on demand
        children = [psutil.Process(pid) for pid in engine.engine_children(service)]
        assert children
    finally:
        assert service.proc is not None
        service.proc.send_signal(signal.SIGKILL)
        service.proc.wait(30)
    _, alive = psutil.wait_procs(children, timeout=60)
    assert alive == []
