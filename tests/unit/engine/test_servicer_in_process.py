"""The real engine servicer over the in-memory engine, on an in-process gRPC server with the
service runtime's interceptors: what reaches the wire, fast."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from switchyard.engine.host import ModelHost
from switchyard.engine.servicer import EngineServicer
from switchyard.runtime.server import SERVER_OPTIONS, MalformedRequests
from switchyard.runtime.settings import EngineSettings
from switchyard.v1 import control_pb2, control_pb2_grpc, inference_pb2, inference_pb2_grpc
from tests.fake_engine import FakeAdapter


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    (tmp_path / "a.fake").write_text("weights")
    host = ModelHost(FakeAdapter(), EngineSettings(model_roots=[tmp_path], status_poll_s=0.01))
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[MalformedRequests()])
    servicer = EngineServicer(host)
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, server)
    control_pb2_grpc.add_ControlServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as made:
        yield made
    await server.stop(0)
    await host.close()


GARBAGE = b"\x0a\xff\xff\xff\xff\x0f"  # a length-delimited field longer than the message


async def test_malformed_bytes_are_invalid_argument_streamed(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        method: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            "/switchyard.v1.Inference/Generate"
        )
        async for _ in method(GARBAGE, timeout=10):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed request" in (info.value.details() or "")


async def test_malformed_bytes_are_invalid_argument_unary(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/switchyard.v1.Control/GetStatus")
        await method(GARBAGE, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_request_loads_its_model_on_demand_and_streams(channel: grpc.aio.Channel) -> None:
    stub = inference_pb2_grpc.InferenceStub(channel)
    request = inference_pb2.GenerateRequest(model="a", prompt="hello")
    responses = [r async for r in stub.Generate(request, timeout=10)]
    assert "".join(r.delta.text for r in responses[:-1]) == "hello"
    assert responses[-1].finished.model == "a"
    status = await control_pb2_grpc.ControlStub(channel).GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    assert [m.name for m in status.statuses[0].models] == ["a"]


async def test_an_empty_unload_unloads_nothing_and_all_unloads_everything(channel: grpc.aio.Channel) -> None:
    stub = inference_pb2_grpc.InferenceStub(channel)
    [r async for r in stub.Generate(inference_pb2.GenerateRequest(model="a", prompt="hi"), timeout=10)]
    control = control_pb2_grpc.ControlStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await control.UnloadModel(control_pb2.UnloadModelRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "set all" in (info.value.details() or "")
    status = await control.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    assert [m.name for m in status.statuses[0].models] == ["a"]
    answer = await control.UnloadModel(control_pb2.UnloadModelRequest(all=True), timeout=10)
    assert list(answer.statuses[0].models) == []
