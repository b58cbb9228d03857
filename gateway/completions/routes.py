"""POST /v1/completions, OpenAI's legacy completions (+ engine)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gateway.auth import require_key
from gateway.completions.protocol import CompletionRequest
from gateway.completions.serving import CompletionServing
from gateway.connection import serving_of

router = APIRouter(dependencies=[Depends(require_key)])
Completions = Annotated[CompletionServing, Depends(serving_of(CompletionServing))]


@router.post("/v1/completions", summary="OpenAI completions (+ engine)")
async def completions(body: CompletionRequest, request: Request, serving: Completions) -> Response:
    return await serving.create(body, request)
