"""POST /v1/responses, and GET and DELETE of a stored response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.auth import owner, require_key
from gateway.connection import serving_of
from gateway.responses_api.protocol import ResponsesRequest
from gateway.responses_api.serving import ResponsesServing
from gateway.responses_api.store import ResponseStore

router = APIRouter(dependencies=[Depends(require_key)])
Responses = Annotated[ResponsesServing, Depends(serving_of(ResponsesServing))]


async def store_of(request: Request) -> ResponseStore:
    store: ResponseStore = request.app.state.responses
    return store


Store = Annotated[ResponseStore, Depends(store_of)]


@router.post("/v1/responses", summary="OpenAI Responses (+ engine)")
async def create(body: ResponsesRequest, request: Request, serving: Responses, store: Store) -> Response:
    return await serving.create(body, request, store)


@router.get("/v1/responses/{response_id}", summary="A stored response")
async def get(response_id: str, request: Request, store: Store) -> dict[str, Any]:
    return store.get(owner(request), response_id).response


@router.delete("/v1/responses/{response_id}", summary="Delete a stored response")
async def delete(response_id: str, request: Request, store: Store) -> dict[str, Any]:
    store.get(owner(request), response_id)  # a 404 when there is none
    store.delete(owner(request), response_id)
    return {"id": response_id, "object": "response", "deleted": True}
