"""Run an engine adapter behind the model host and the shared servicer: the whole process of
an engine service."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

from switchyard.contract import SERVICE_NAMES
from switchyard.engine import metrics
from switchyard.engine.host import ModelHost
from switchyard.engine.protocol import EngineAdapter
from switchyard.engine.servicer import EngineServicer
from switchyard.errors import EngineError
from switchyard.runtime import tracing
from switchyard.runtime.server import GrpcService
from switchyard.runtime.settings import EngineSettings
from switchyard.v1 import control_pb2, control_pb2_grpc, inference_pb2_grpc

logger = logging.getLogger(__name__)

INFERENCE_SERVICE = SERVICE_NAMES[0]


async def _follow_health(host: ModelHost, service: GrpcService) -> None:
    """Inference is SERVING in grpc.health.v1 only while a model is loaded."""
    async for status in host.board.watch():
        serving = any(m.state == control_pb2.MODEL_STATE_LOADED for m in status.models)
        await service.set_serving(INFERENCE_SERVICE, serving)


async def _load_at_start(host: ModelHost, request: control_pb2.LoadModelRequest) -> None:
    try:
        await host.load_at_start(request)
    except EngineError as exc:
        logger.error("loading %s at start failed: %s", request.model_path, exc)


def _engine_families(host: ModelHost) -> list[tuple[str, list[Metric]]]:
    """Called from the metrics server's thread: reads only (a list copy, attributes swapped whole)."""
    return [(slot.name, slot.running.engine_metrics()) for slot in list(host.slots()) if slot.running is not None]


async def run_engine_service(
    adapter: EngineAdapter,
    settings: EngineSettings,
    name: str,
    load_at_start: control_pb2.LoadModelRequest | None = None,
) -> None:
    tracing.setup(f"switchyard-{name}", settings.otlp_traces_endpoint)  # before the server is made
    service = GrpcService(settings, name)
    host = ModelHost(adapter, settings)
    servicer = EngineServicer(host)
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, service.server)
    control_pb2_grpc.add_ControlServicer_to_server(servicer, service.server)
    service.add_services(SERVICE_NAMES)
    await service.set_serving(INFERENCE_SERVICE, False)
    host.start()
    REGISTRY.register(metrics.EngineFamilies(lambda: _engine_families(host)))
    tasks = [asyncio.create_task(_follow_health(host, service), name="health")]
    if load_at_start is not None:
        tasks.append(asyncio.create_task(_load_at_start(host, load_at_start), name="load"))
    try:
        await service.run(on_shutdown=host.close)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
