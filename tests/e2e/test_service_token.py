"""Services that authenticate each other: with a service token set, the router and the engine
refuse every call without it (health checks aside), while the gateway, which sends it, serves;
a user key cannot load through the gateway, nor anyone without the token through the router or
the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.v1 import control_pb2, control_pb2_grpc, inference_pb2, inference_pb2_grpc
from tests.conformance.engines import LLAMACPP, load_request
from tests.e2e.conftest import load_body
from tests.helpers import ServiceProcess

TOKEN = "s3cret-service-token"
Metadata = tuple[tuple[str, str], ...]


@dataclass
class TokenStack:
    engine: ServiceProcess
    router: ServiceProcess
    gateway: ServiceProcess


@pytest.fixture(scope="module")
def token_stack(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenStack]:
    logs = tmp_path_factory.mktemp("token")
    (logs / "token").write_text(TOKEN + "\n")
    env = {"SWITCHYARD_SERVICE_TOKEN_FILE": str(logs / "token")}
    engine = ServiceProcess(LLAMACPP.module, ["--model-roots", str(model_root)], logs / "engine.log", env)
    router = ServiceProcess("services.router", ["--backends", f"llamacpp={engine.address}"], logs / "router.log", env)
    keys = ["--api-keys", "user-key", "--admin-keys", "admin-key"]
    gateway = ServiceProcess("gateway", ["--router", router.address, *keys], logs / "gateway.log", env, http=True)
    try:
        yield TokenStack(engine.start(), router.start(), gateway.start())
    finally:
        for service in (gateway, router, engine):
            if service.proc is not None:
                service.stop()


def calls(channel: grpc.Channel, metadata: Metadata) -> dict[str, Callable[[], object]]:
    """One call of each kind (unary and streamed, Control and Inference), not yet made."""
    control = control_pb2_grpc.ControlStub(channel)
    inference = inference_pb2_grpc.InferenceStub(channel)
    return {
        "GetStatus": lambda: control.GetStatus(control_pb2.GetStatusRequest(), timeout=10, metadata=metadata),
        "LoadModel": lambda: list(control.LoadModel(load_request(LLAMACPP), timeout=10, metadata=metadata)),
        "Generate": lambda: list(
            inference.Generate(inference_pb2.GenerateRequest(prompt="x"), timeout=10, metadata=metadata)
        ),
    }


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)],
    ids=["none", "wrong", "not-bearer"],
)
def test_a_call_without_the_token_is_refused_by_every_grpc_service(token_stack: TokenStack, metadata: Metadata) -> None:
    for service in (token_stack.router, token_stack.engine):
        with grpc.insecure_channel(service.address) as channel:
            for name, call in calls(channel, metadata).items():
                with pytest.raises(grpc.RpcError) as refused:
                    call()
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, (service.module, name)
                assert "service token" in (refused.value.details() or "")
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes need no token


def test_the_gateway_sends_the_token_and_only_an_admin_key_loads(token_stack: TokenStack) -> None:
    url = token_stack.gateway.url
    user, admin = ({"Authorization": f"Bearer {key}"} for key in ("user-key", "admin-key"))
    body = load_body(LLAMACPP)
    assert httpx.post(f"{url}/v1/models/load", json=body, headers=user, timeout=60).status_code == 403
    assert httpx.post(f"{url}/v1/models/load", json=body, headers=admin, timeout=300).status_code == 200
    completion = {"model": body["served_model_name"], "prompt": "Hello", "max_tokens": 4}
    answer = httpx.post(f"{url}/v1/completions", json=completion, headers=user, timeout=60)
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 4
    with grpc.insecure_channel(token_stack.router.address) as channel:  # with the token: served
        status = control_pb2_grpc.ControlStub(channel).GetStatus(
            control_pb2.GetStatusRequest(), timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),)
        )
        assert status.statuses[0].state == control_pb2.MODEL_STATE_LOADED
    for service in (token_stack.engine, token_stack.router, token_stack.gateway):
        assert TOKEN not in service.log_path.read_text(errors="replace")  # never logged
