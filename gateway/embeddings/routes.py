"""POST /v1/embeddings, OpenAI's embeddings (+ engine), from a model loaded for embeddings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from gateway.auth import require_key
from gateway.connection import serving_of
from gateway.embeddings.protocol import EmbeddingList, EmbeddingRequest
from gateway.embeddings.serving import EmbeddingServing

router = APIRouter(dependencies=[Depends(require_key)])
Embeddings = Annotated[EmbeddingServing, Depends(serving_of(EmbeddingServing))]


@router.post("/v1/embeddings", summary="OpenAI embeddings (+ engine), with a model loaded for embeddings")
async def embeddings(body: EmbeddingRequest, request: Request, serving: Embeddings) -> EmbeddingList:
    return await serving.create(body, request)
