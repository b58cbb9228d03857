"""Model administration: load, unload and pull (an admin key when keys are configured)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.auth import require_admin
from gateway.connection import Router, router_of, settings_of
from gateway.protocol import LoadRequest, PullRequest, UnloadRequest
from gateway.pulls import pull_response
from gateway.settings import GatewaySettings

router = APIRouter(dependencies=[Depends(require_admin)])
Connection = Annotated[Router, Depends(router_of)]
Settings = Annotated[GatewaySettings, Depends(settings_of)]


@router.post("/v1/models/load", summary="Load a model; blocks until loaded")
async def load(body: LoadRequest, connection: Connection, settings: Settings) -> dict[str, Any]:
    last = None
    replicas: set[str] = set()
    load = connection.control.LoadModel(body.to_proto(), timeout=settings.load_timeout_s, metadata=connection.metadata)
    async for event in load:
        last = event
        replicas.add(event.status.backend)
    return {
        "status": "success",
        "engine": body.engine,
        "model": last.status.model if last else None,
        "model_path": last.status.model_path if last else body.model_path,
        "replicas": sorted(replicas),
    }


@router.post("/v1/models/pull", summary="Pull a model from the Hugging Face hub")
async def pull(body: PullRequest, request: Request, connection: Connection, settings: Settings) -> Response:
    return await pull_response(connection, body.to_proto(), body.stream, settings.pull_timeout_s, request)


@router.post("/v1/models/unload", summary="Unload a model, or every model of an engine")
async def unload(body: UnloadRequest, connection: Connection, settings: Settings) -> dict[str, Any]:
    answer = await connection.control.UnloadModel(body.to_proto(), timeout=settings.unload_timeout_s)
    return {
        "status": "success",
        "engine": body.engine,
        "model": body.model,
        "replicas": [s.backend for s in answer.statuses],
    }
