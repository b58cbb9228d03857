"""Probes and metrics: liveness (the seed's ``/health``: the gateway answers), readiness
(``/ready``) and the Prometheus metrics of the gateway (of every worker process, when there are
several)."""

from __future__ import annotations

import os
from typing import Any

import grpc
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from gateway.auth import require_key_unless_open
from gateway.connection import Connection, Settings
from gateway.errors import ApiError, json_error
from switchyard.v1 import control_pb2

router = APIRouter()
READY_TIMEOUT_S = 2.0  # under the probes' own timeouts (3 s in the manifests)


@router.get("/health", summary="Liveness of the gateway")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(require_key_unless_open)])
async def prometheus() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # --workers N: add up every worker's files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/ready",
    summary="Readiness: the router answers and (by default) some engine has a model loaded",
    responses={503: {"description": "not ready, and why (OpenAI's error body)"}},
)
async def ready(connection: Connection, settings: Settings) -> JSONResponse:
    """The readiness probe: a gateway whose router is gone, or that has no model to serve,
    should get no traffic; ``/health`` stays the liveness probe (the process answers)."""
    try:
        answer = await connection.control.GetStatus(control_pb2.GetStatusRequest(), timeout=READY_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        return _not_ready(f"the router does not answer ({exc.code().name})")
    loaded = sorted({m.name for s in answer.statuses for m in s.models if m.state == control_pb2.MODEL_STATE_LOADED})
    if not loaded and settings.ready_requires_model:
        return _not_ready("no model is loaded")
    body: dict[str, Any] = {"status": "ready", "models": loaded}
    return JSONResponse(body)


def _not_ready(why: str) -> JSONResponse:
    return json_error(ApiError(503, f"not ready: {why}"))
