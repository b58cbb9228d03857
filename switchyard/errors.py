"""The project's own error types, each carrying the gRPC status code it maps to, and the one
place servicers turn them into statuses.

Servicers map only these to client-facing codes (STYLE.md #7): a bare ValueError or
RuntimeError is a bug and surfaces as INTERNAL with a logged traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import grpc

logger = logging.getLogger(__name__)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class EngineError(Exception):
    """Base class; ``code`` is the gRPC status the client gets, the message its details, and
    a ``reason`` (when set) goes with them as trailing metadata, for the cases one code does
    not tell apart (the gateway answers INSUFFICIENT_STORAGE with 507, not 429)."""

    code = grpc.StatusCode.INTERNAL
    reason = ""
    retry_after_s = 0  # when set, sent as trailing metadata retry-after (the gateway's Retry-After)


class InvalidArgument(EngineError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(EngineError):
    code = grpc.StatusCode.NOT_FOUND


class PermissionDenied(EngineError):
    code = grpc.StatusCode.PERMISSION_DENIED


class FailedPrecondition(EngineError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(EngineError):
    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(EngineError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Internal(EngineError):
    """An unexpected failure whose cause is logged; the client gets INTERNAL and a summary."""

    code = grpc.StatusCode.INTERNAL


class InsufficientStorage(ResourceExhausted):
    """Not enough disk space for a pull."""

    reason = "INSUFFICIENT_STORAGE"


class QueueFull(ResourceExhausted):
    """A model has as many requests running or waiting as it may: come back shortly."""

    reason = "QUEUE_FULL"
    retry_after_s = 1


class Conflict(EngineError):
    """A concurrent operation (a second load) collides with one in progress."""

    code = grpc.StatusCode.ABORTED


REASON_KEY = "switchyard-reason"
RETRY_AFTER_KEY = "retry-after"


def error_for_code(code_name: str, message: str, reason: str = "") -> EngineError:
    """An EngineError carrying a status given by name (as a worker process reports it)."""
    error = EngineError(message)
    error.code = grpc.StatusCode[code_name] if code_name in grpc.StatusCode.__members__ else grpc.StatusCode.INTERNAL
    error.reason = reason
    return error


def _trailers_of(exc: EngineError) -> tuple[tuple[str, str], ...]:
    pairs = [(REASON_KEY, exc.reason)] if exc.reason else []
    if exc.retry_after_s:
        pairs.append((RETRY_AFTER_KEY, str(exc.retry_after_s)))
    return tuple(pairs)


def retry_after(exc: grpc.aio.AioRpcError) -> str:
    """The seconds a failed call said to wait before trying again, if it said."""
    return next((str(v) for k, v in exc.trailing_metadata() or () if k == RETRY_AFTER_KEY), "")


def trailers(exc: grpc.aio.AioRpcError) -> tuple[tuple[str, str | bytes], ...]:
    """A failed call's trailing metadata, to pass on with its status (the reason among it)."""
    return tuple((key, value) for key, value in exc.trailing_metadata() or ())


def reason_of(exc: grpc.aio.AioRpcError) -> str:
    """The reason a failed call carried in its trailing metadata, if any."""
    for key, value in exc.trailing_metadata() or ():
        if key == REASON_KEY:
            return str(value)
    return ""


@asynccontextmanager
async def grpc_errors(context: Context, what: str) -> AsyncIterator[None]:
    """Map project errors to their status; anything unexpected is logged and INTERNAL.

    ``grpc.aio.AbortError`` (an abort already under way) passes through untouched.
    """
    try:
        yield
    except grpc.aio.AbortError:
        raise
    except EngineError as exc:
        await context.abort(exc.code, str(exc), _trailers_of(exc))
    except Exception:
        logger.exception("%s failed", what)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {what}; see the service log")
