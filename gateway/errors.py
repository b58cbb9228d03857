"""Errors at the edge: one place turns gRPC statuses and validation failures into the OpenAI
error body ``{"error": {"message", "type", "param", "code"}}`` with the right HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from switchyard.errors import InsufficientStorage, reason_of, retry_after

logger = logging.getLogger(__name__)

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    499: "cancelled",
    501: "not_implemented_error",
    503: "service_unavailable_error",
    504: "timeout_error",
    507: "insufficient_storage",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: int


class ErrorBody(BaseModel):
    """OpenAI's error body; every 4xx and 5xx of the gateway has this shape."""

    error: ErrorDetail


# The error answers every route may give, for the OpenAPI schema (/docs).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "a bad value (the field is named in param)"),
        (401, "a missing or invalid API key"),
        (403, "not allowed: a path outside the model roots, or loading without an admin key"),
        (404, "no such model, path or route"),
        (409, "a conflict: no model loaded, or a load already running"),
        (413, "the request body is too large"),
        (422, "a malformed request (wrong types, missing fields)"),
        (429, "too busy: every model busy, a queue full"),
        (503, "the engine is loading, down or unreachable"),
        (504, "the request's deadline passed"),
        (507, "not enough disk space for a pull"),
    )
}


class ApiError(Exception):
    """An error the gateway itself raises, already in HTTP terms."""

    def __init__(
        self, status: int, message: str, param: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.headers = headers


def error_body(status: int, message: str, param: str | None = None) -> dict[str, object]:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": status,
        }
    }


def from_rpc_error(exc: grpc.aio.AioRpcError) -> ApiError:
    """The HTTP view of a failed gRPC call; details of internal errors stay in the logs."""
    status = 507 if reason_of(exc) == InsufficientStorage.reason else HTTP_STATUS.get(exc.code(), 500)
    if status == 500:
        logger.error("upstream error %s: %s", exc.code().name, exc.details())
        return ApiError(500, "internal error in the inference backend")
    wait = retry_after(exc)  # a full queue says when to come back
    return ApiError(status, exc.details() or exc.code().name, headers={"Retry-After": wait} if wait else None)


def json_error(error: ApiError) -> JSONResponse:
    body = error_body(error.status, error.message, error.param)
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return json_error(exc)


async def handle_rpc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return json_error(from_rpc_error(exc))


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return json_error(ApiError(422, message, param))


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return json_error(ApiError(exc.status_code, str(exc.detail), headers=exc.headers))  # e.g. 405's Allow
