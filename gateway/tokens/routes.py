"""Tokenizing with a model's own tokenizer: /tokenize and /detokenize."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from gateway.auth import loaded_only, require_key
from gateway.connection import Connection
from gateway.tokens.protocol import DetokenizeRequest, TokenizeRequest

router = APIRouter(dependencies=[Depends(require_key)])


@router.post("/tokenize", summary="Token ids of a prompt or a chat")
async def tokenize(body: TokenizeRequest, request: Request, connection: Connection) -> dict[str, Any]:
    ask = body.to_proto()
    ask.loaded_only = loaded_only(request)
    answer = await connection.inference.Tokenize(ask, timeout=30)
    return {"tokens": list(answer.token_ids), "count": len(answer.token_ids), "max_model_len": answer.max_model_len}


@router.post("/detokenize", summary="Text of token ids")
async def detokenize(body: DetokenizeRequest, request: Request, connection: Connection) -> dict[str, Any]:
    ask = body.to_proto()
    ask.loaded_only = loaded_only(request)
    answer = await connection.inference.Detokenize(ask, timeout=30)
    return {"prompt": answer.text}
