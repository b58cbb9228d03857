"""The seed system's liveness and status routes, in its shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from gateway.auth import require_key
from gateway.connection import Router, router_of
from gateway.status import seed_status
from switchyard.v1 import control_pb2

router = APIRouter()


@router.get("/health", summary="Liveness of the gateway")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/status", dependencies=[Depends(require_key)], summary="Per-engine state, the seed's shape")
async def status(connection: Annotated[Router, Depends(router_of)]) -> dict[str, Any]:
    answer = await connection.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10)
    return seed_status(list(answer.statuses))
