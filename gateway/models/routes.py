"""The model routes: the catalogue and the seed's status (any key), and model administration:
load, unload and pull (an admin key when keys are configured)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.auth import require_admin, require_key
from gateway.connection import serving_of
from gateway.models.protocol import LoadRequest, PullRequest, UnloadRequest
from gateway.models.serving import ModelServing

router = APIRouter(dependencies=[Depends(require_key)])
admin = APIRouter(dependencies=[Depends(require_admin)])
Models = Annotated[ModelServing, Depends(serving_of(ModelServing))]


@router.get("/v1/status", summary="Per-engine state, the seed's shape")
async def status(serving: Models) -> dict[str, Any]:
    return await serving.status()


@router.get("/v1/models", summary="Models loaded, loading, in error and loadable")
async def models(serving: Models) -> dict[str, Any]:
    return {"object": "list", "data": await serving.catalogue()}


@router.get("/v1/models/{model_id:path}", summary="One model")
async def model(model_id: str, serving: Models) -> dict[str, Any]:
    return await serving.model(model_id)


@admin.post("/v1/models/load", summary="Load a model; blocks until loaded")
async def load(body: LoadRequest, serving: Models) -> dict[str, Any]:
    return await serving.load(body)


@admin.post("/v1/models/pull", summary="Pull a model from the Hugging Face hub")
async def pull(body: PullRequest, request: Request, serving: Models) -> Response:
    return await serving.pull(body, request)


@admin.post("/v1/models/unload", summary="Unload a model, or every model of an engine")
async def unload(body: UnloadRequest, serving: Models) -> dict[str, Any]:
    return await serving.unload(body)
