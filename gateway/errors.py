"""Errors at the edge: one place turns gRPC statuses and validation failures into the OpenAI
error body ``{"error": {"message", "type", "param", "code"}}`` with the right HTTP status, or,
under Anthropic's routes (``/v1/messages``), Anthropic's ``{"type": "error", "error": {"type",
"message"}}`` with the same status."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

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
        (400, "a malformed request or a bad value (the field is named in param)"),
        (401, "a missing or invalid API key"),
        (403, "not allowed: a path outside the model roots, or loading without an admin key"),
        (404, "no such model, path or route"),
        (409, "a conflict: no model loaded, or a load already running"),
        (413, "the request body is too large"),
        (429, "too busy: every model busy, a queue full"),
        (503, "the engine is loading, down or unreachable"),
        (504, "the request's deadline passed"),
        (507, "not enough disk space for a pull"),
    )
}


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorBody(BaseModel):
    """Anthropic's error body: every error of /v1/messages has this shape."""

    type: Literal["error"]
    error: AnthropicErrorDetail


ANTHROPIC_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": AnthropicErrorBody, "description": answer["description"]}
    for status, answer in ERROR_RESPONSES.items()
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


# Anthropic's error types (its SDK's union); a status without one of its own gets the generic
# type of its class. 413 is Anthropic's request_too_large, which its SDK does not type.
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}
ANTHROPIC_PREFIX = "/v1/messages"


def is_anthropic(path: str) -> bool:
    """Whether ``path`` is one of Anthropic's routes, whose errors have Anthropic's shape."""
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def anthropic_error_body(status: int, message: str) -> dict[str, object]:
    kind = ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_body_for(path: str, status: int, message: str, param: str | None = None) -> dict[str, object]:
    """The error body of the API ``path`` belongs to (a field's name goes into an Anthropic
    message, which has no param)."""
    if is_anthropic(path):
        return anthropic_error_body(status, message)
    return error_body(status, message, param)


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


# The engines name a field by its place in the contract; a client knows it by its place in the
# JSON it sent. (prefix of the contract's path, what the client sent it as)
CONTRACT_PATHS = (
    ("chat.messages", "messages"),
    ("chat.functions", "tools"),
    ("chat.tools", "tools"),
    ("chat.", ""),
    ("response_format.json_schema.schema_json", "response_format.json_schema.schema"),
    ("prompt_token_ids", "prompt"),
    ("inputs", "input"),
)
FIELD_PATH = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*|\[\d+\])*")
FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*")
NOT_FIELDS = frozenset({"the", "a", "an", "at", "model", "no", "this", "every", "only", "name", "one", "it", "llama"})
TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def param_of(message: str) -> str | None:
    """The field an engine's message names first (``temperature must be ...``,
    ``chat.messages[1].role ...``), as the client's JSON path (``messages.1.role``)."""
    found = FIELD_PATH.match(message)
    if found is None or found.group() in NOT_FIELDS or found.end() == len(message):
        return None
    path = found.group()
    for theirs, ours in CONTRACT_PATHS:
        if path.startswith(theirs):
            path = ours + path[len(theirs) :]
            break
    path = re.sub(r"\[(\d+)\]", r".\1", path).strip(".")
    path = path.replace(".parameters_json", ".function.parameters")
    return re.sub(r"^tools\.(\d+)\.name", r"tools.\1.function.name", path) or None


def json_error(error: ApiError, path: str = "") -> JSONResponse:
    """The error answer, in the shape of the API ``path`` belongs to (OpenAI's by default)."""
    param = error.param if error.param is not None or error.status != 400 else param_of(error.message)
    body = error_body_for(path, error.status, error.message, param)
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return json_error(exc, request.url.path)


async def handle_rpc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return json_error(from_rpc_error(exc), request.url.path)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = _sent_path(exc.body, location)
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return json_error(ApiError(400, message, param), request.url.path)


def _sent_path(body: Any, location: list[str]) -> str | None:
    """The part of pydantic's error location that is a path in the JSON the client sent: it
    adds names of union members (``literal['none','auto']``, ``NamedToolChoice``) that are not."""
    node, path = body, []
    for part in location:
        if isinstance(node, dict):
            if part not in node:  # a missing field is named; a union member's tag is not
                if FIELD_NAME.fullmatch(part) and part not in TYPE_TAGS:
                    path.append(part)
                break
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            path.append(part)
            node = node[int(part)]
        else:
            break
    return ".".join(path) or None


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return json_error(ApiError(exc.status_code, str(exc.detail), headers=exc.headers), request.url.path)  # 405's Allow
