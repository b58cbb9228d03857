"""Control: loading, switching, unloading, status, health and reflection, on a real engine."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from switchyard.v1 import control_pb2, inference_pb2
from tests.conformance.engines import EngineUnderTest, load_request
from tests.helpers import ServiceProcess, StatusFollower, wait_until

INFERENCE = "switchyard.v1.Inference"


def health_of(service: ServiceProcess, name: str) -> int:
    assert service.channel is not None
    stub = health_pb2_grpc.HealthStub(service.channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status)


def status_of(service: ServiceProcess) -> control_pb2.EngineStatus:
    statuses = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses
    assert len(statuses) == 1
    return statuses[0]


def test_reflection_lists_the_contract_health_and_reflection(idle_service: ServiceProcess) -> None:
    assert idle_service.channel is not None
    stub = reflection_pb2_grpc.ServerReflectionStub(idle_service.channel)
    answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert {
        "switchyard.v1.Inference",
        "switchyard.v1.Control",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


def test_idle_engine_reports_idle_and_inference_not_serving(
    idle_service: ServiceProcess, engine: EngineUnderTest
) -> None:
    status = status_of(idle_service)
    assert status.engine == engine.kind
    assert status.state == control_pb2.MODEL_STATE_IDLE
    assert status.engine_version  # the engine software's version is always shown
    assert not status.process_alive
    assert health_of(idle_service, "") == health_pb2.HealthCheckResponse.SERVING
    assert health_of(idle_service, INFERENCE) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_status_for_another_engine_is_empty(idle_service: ServiceProcess, engine: EngineUnderTest) -> None:
    answer = idle_service.control.GetStatus(control_pb2.GetStatusRequest(engine=engine.other_kind), timeout=10)
    assert list(answer.statuses) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s: list(s.inference.Generate(inference_pb2.GenerateRequest(prompt="hi"), timeout=10)),
        lambda s: s.inference.Tokenize(inference_pb2.TokenizeRequest(text="hi"), timeout=10),
        lambda s: s.inference.Detokenize(inference_pb2.DetokenizeRequest(token_ids=[1]), timeout=10),
    ],
    ids=["generate", "tokenize", "detokenize"],
)
def test_inference_before_load_is_failed_precondition(idle_service: ServiceProcess, call: object) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call(idle_service)  # type: ignore[operator]
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no model loaded" in (info.value.details() or "")


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"model_path": "missing.gguf"}, grpc.StatusCode.NOT_FOUND, "not found"),
        ({"model_path": "../outside/secret.gguf"}, grpc.StatusCode.PERMISSION_DENIED, "outside the model roots"),
        ({"model_path": "/etc/passwd"}, grpc.StatusCode.PERMISSION_DENIED, "outside the model roots"),
        ({"model_path": "escape.gguf"}, grpc.StatusCode.PERMISSION_DENIED, "outside the model roots"),
        ({"model_path": "not-a-model.gguf"}, grpc.StatusCode.INVALID_ARGUMENT, "not a"),
        ({"model_path": ""}, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        ({"wrong_options": True}, grpc.StatusCode.INVALID_ARGUMENT, "options"),
        ({"wrong_engine": True}, grpc.StatusCode.INVALID_ARGUMENT, "engine"),
    ],
    ids=[
        "missing",
        "dotdot",
        "absolute-outside",
        "symlink-out",
        "not-a-model",
        "empty",
        "wrong-options",
        "wrong-engine",
    ],
)
def test_bad_loads_are_refused_and_leave_the_engine_idle(
    idle_service: ServiceProcess,
    engine: EngineUnderTest,
    overrides: dict[str, object],
    code: grpc.StatusCode,
    message: str,
) -> None:
    overrides = dict(overrides)  # the parameter dict is shared by every engine's run
    request = load_request(engine)
    if overrides.pop("wrong_options", False):
        request = load_request(engine, **engine.wrong_options)
    if overrides.pop("wrong_engine", False):
        request.engine = engine.other_kind
    for field, value in overrides.items():
        setattr(request, field, value)
    with pytest.raises(grpc.RpcError) as info:
        list(idle_service.control.LoadModel(request, timeout=60))
    assert info.value.code() == code, info.value.details()
    assert message in (info.value.details() or "")
    assert status_of(idle_service).state == control_pb2.MODEL_STATE_IDLE


def test_list_models_shows_loadable_models_only(
    idle_service: ServiceProcess, engine: EngineUnderTest, model_root: Path
) -> None:
    models = idle_service.control.ListModels(control_pb2.ListModelsRequest(), timeout=10).models
    paths = {m.path for m in models}
    assert str(model_root / engine.model) in paths
    assert str(model_root / "not-a-model.gguf") not in paths
    assert all(m.engine == engine.kind and m.size_bytes > 0 and not m.loaded for m in models)


def test_load_streams_progress_and_then_serves(idle_service: ServiceProcess, engine: EngineUnderTest) -> None:
    events = list(idle_service.control.LoadModel(load_request(engine), timeout=300))
    assert events[0].state == control_pb2.MODEL_STATE_LOADING
    assert events[-1].state == control_pb2.MODEL_STATE_LOADED
    progress = [e.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    final = events[-1].status
    assert final.model == engine.served_name and final.process_alive and final.max_model_len > 0
    assert health_of(idle_service, INFERENCE) == health_pb2.HealthCheckResponse.SERVING
    models = idle_service.control.ListModels(control_pb2.ListModelsRequest(), timeout=10).models
    assert [m.name for m in models if m.loaded] == [Path(engine.model).stem]


def test_a_second_load_while_one_runs_is_aborted(idle_service: ServiceProcess, engine: EngineUnderTest) -> None:
    first = idle_service.control.LoadModel(load_request(engine, served_model_name="second"), timeout=300)
    assert next(first).state == control_pb2.MODEL_STATE_LOADING
    with pytest.raises(grpc.RpcError) as info:
        list(idle_service.control.LoadModel(load_request(engine), timeout=60))
    assert info.value.code() == grpc.StatusCode.ABORTED
    assert "already running" in (info.value.details() or "")
    assert list(first)[-1].state == control_pb2.MODEL_STATE_LOADED
    assert status_of(idle_service).model == "second"


def test_a_load_survives_its_caller_going_away(idle_service: ServiceProcess, engine: EngineUnderTest) -> None:
    call = idle_service.control.LoadModel(load_request(engine, served_model_name="orphan"), timeout=300)
    assert next(call).state == control_pb2.MODEL_STATE_LOADING
    call.cancel()
    wait_until(
        lambda: status_of(idle_service).state == control_pb2.MODEL_STATE_LOADED,
        300,
        "the orphaned load to finish",
    )
    assert status_of(idle_service).model == "orphan"


def test_watch_status_sees_unload(idle_service: ServiceProcess) -> None:
    watch = idle_service.control.WatchStatus(control_pb2.WatchStatusRequest(), timeout=120)
    assert next(watch).status.state == control_pb2.MODEL_STATE_LOADED
    follower = StatusFollower(watch, control_pb2.MODEL_STATE_IDLE)
    idle_service.control.UnloadModel(control_pb2.UnloadModelRequest(all=True), timeout=60)
    seen = follower.join(60)
    assert seen and seen[-1].state == control_pb2.MODEL_STATE_IDLE and not seen[-1].process_alive


def test_unload_leaves_nothing_running_and_is_idempotent(idle_service: ServiceProcess, engine: EngineUnderTest) -> None:
    answer = idle_service.control.UnloadModel(control_pb2.UnloadModelRequest(all=True), timeout=60)
    assert answer.statuses[0].state == control_pb2.MODEL_STATE_IDLE
    assert engine.engine_children(idle_service) == []
    assert health_of(idle_service, INFERENCE) == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.RpcError) as info:
        list(idle_service.inference.Generate(inference_pb2.GenerateRequest(prompt="hi"), timeout=10))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_switching_models_replaces_the_old_one(idle_service: ServiceProcess, engine: EngineUnderTest) -> None:
    list(idle_service.control.LoadModel(load_request(engine, served_model_name="one"), timeout=300))
    before = set(engine.engine_children(idle_service))
    events = list(idle_service.control.LoadModel(load_request(engine, served_model_name="two"), timeout=300))
    assert events[-1].status.model == "two"
    after = set(engine.engine_children(idle_service))
    assert before and after and not before & after  # the old engine process is gone, not kept beside
    request = inference_pb2.GenerateRequest(
        prompt="hi", model="one", stopping=inference_pb2.StoppingCriteria(max_tokens=2)
    )
    with pytest.raises(grpc.RpcError) as info:
        list(idle_service.inference.Generate(request, timeout=30))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "'one' is not loaded" in (info.value.details() or "")
