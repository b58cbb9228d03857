"""Run an engine behind the shared servicer: the whole process of an engine service."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from switchyard.engine.protocol import Engine
from switchyard.engine.servicer import SERVICE_NAMES, EngineServicer
from switchyard.errors import EngineError
from switchyard.runtime.server import GrpcService
from switchyard.runtime.settings import ServiceSettings
from switchyard.v1 import control_pb2, control_pb2_grpc, inference_pb2_grpc

logger = logging.getLogger(__name__)

INFERENCE_SERVICE = SERVICE_NAMES[0]


async def _follow_health(engine: Engine, service: GrpcService) -> None:
    """Inference is SERVING in grpc.health.v1 only while a model is loaded."""
    async for status in engine.board.watch():
        await service.set_serving(INFERENCE_SERVICE, status.state == control_pb2.MODEL_STATE_LOADED)


async def _load_at_start(engine: Engine, request: control_pb2.LoadModelRequest) -> None:
    try:
        await engine.load(engine.prepare_load(request))
    except EngineError as exc:
        logger.error("loading %s at start failed: %s", request.model_path, exc)


async def run_engine_service(
    engine: Engine,
    settings: ServiceSettings,
    name: str,
    load_at_start: control_pb2.LoadModelRequest | None = None,
) -> None:
    service = GrpcService(settings, name)
    servicer = EngineServicer(engine)
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, service.server)
    control_pb2_grpc.add_ControlServicer_to_server(servicer, service.server)
    service.add_services(SERVICE_NAMES)
    await service.set_serving(INFERENCE_SERVICE, False)
    tasks = [asyncio.create_task(_follow_health(engine, service), name="health")]
    if load_at_start is not None:
        tasks.append(asyncio.create_task(_load_at_start(engine, load_at_start), name="load"))
    try:
        await service.run(on_shutdown=engine.shutdown)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
