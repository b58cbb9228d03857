"""The whole stack in one process, fast: in-memory engines behind the real engine servicer on
real gRPC servers, the real router over them, and the real gateway served by uvicorn, all on
loopback sockets. No llama-server, no vLLM: seconds, not minutes. The real-engine suites (and
tests/e2e) prove the same behaviours on the engines themselves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import uvicorn

from gateway.app import create_app
from gateway.connection import Router
from gateway.settings import GatewaySettings
from services.router.backends import Backend, BackendPool, BackendSpec
from services.router.servicer import RouterServicer, add_to_server
from switchyard.engine.host import ModelHost
from switchyard.engine.servicer import EngineServicer
from switchyard.runtime.net import free_port
from switchyard.runtime.server import SERVER_OPTIONS, MalformedRequests
from switchyard.runtime.settings import EngineSettings
from switchyard.v1 import common_pb2, control_pb2_grpc, inference_pb2_grpc
from tests.fake_engine import FakeAdapter

LLAMA, VLLM = common_pb2.ENGINE_LLAMACPP, common_pb2.ENGINE_VLLM


async def grpc_server(*servicers: object) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[MalformedRequests()])
    for servicer in servicers:
        if isinstance(servicer, RouterServicer):
            add_to_server(servicer, server)  # as the router registers itself: Generate passed on raw
            continue
        inference_pb2_grpc.add_InferenceServicer_to_server(servicer, server)  # type: ignore[arg-type]
        control_pb2_grpc.add_ControlServicer_to_server(servicer, server)  # type: ignore[arg-type]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@dataclass
class FastEngine:
    adapter: FakeAdapter
    host: ModelHost
    server: grpc.aio.Server
    address: str


@dataclass
class FastStack:
    engines: list[FastEngine]
    url: str
    router: Router
    pool: BackendPool
    router_server: grpc.aio.Server
    closers: list[object] = field(default_factory=list)

    def engine(self, kind: common_pb2.Engine.ValueType) -> FastEngine:
        return next(e for e in self.engines if e.adapter.kind == kind)


async def start_engine(kind: common_pb2.Engine.ValueType, root: Path) -> FastEngine:
    adapter = FakeAdapter(kind)
    host = ModelHost(adapter, EngineSettings(model_roots=[root], status_poll_s=0.02, max_models=4))
    host.start()
    server, address = await grpc_server(EngineServicer(host))
    return FastEngine(adapter, host, server, address)


@contextlib.asynccontextmanager
async def fast_stack(
    root: Path, kinds: tuple[common_pb2.Engine.ValueType, ...] = (LLAMA, VLLM), **gateway: object
) -> AsyncIterator[FastStack]:
    engines = [await start_engine(kind, root) for kind in kinds]
    servicer: RouterServicer | None = None

    def publish(backend: Backend) -> None:
        assert servicer is not None
        servicer.publish(backend)

    names = {LLAMA: "llamacpp", VLLM: "vllm"}
    specs = [BackendSpec.parse(f"{names[e.adapter.kind]}={e.address}") for e in engines]
    pool = BackendPool(specs, resolve_interval_s=5, backoff_max_s=0.2, on_change=publish)
    servicer = RouterServicer(pool)
    router_server, router_address = await grpc_server(servicer)
    await pool.start()
    port = free_port()
    gateway = {"stream_keepalive_s": 0.05, **gateway}  # keep-alive tests need not wait; others may set more
    app = create_app(GatewaySettings(router=router_address, **gateway))  # type: ignore[arg-type]
    app.state.router = Router(router_address)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.01)
    stack = FastStack(engines, f"http://127.0.0.1:{port}", app.state.router, pool, router_server)
    while not all(b.reachable for b in pool.backends()):  # noqa: ASYNC110 (the router's watch streams connect)
        await asyncio.sleep(0.01)
    try:
        yield stack
    finally:
        server.should_exit = True
        await serving
        await app.state.router.channel.close()
        await pool.close()
        await router_server.stop(0)
        for engine in engines:
            await engine.server.stop(0)
            await engine.host.close()


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    for name in ("demo", "other"):
        (tmp_path / f"{name}.fake").write_text("weights")
    return tmp_path
