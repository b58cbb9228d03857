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
    """Base class; ``code`` is the gRPC status the client gets, the message its details."""

    code = grpc.StatusCode.INTERNAL


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


class Conflict(EngineError):
    """A concurrent operation (a second load) collides with one in progress."""

    code = grpc.StatusCode.ABORTED


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
        await context.abort(exc.code, str(exc))
    except Exception:
        logger.exception("%s failed", what)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {what}; see the service log")
