"""The project's own error types, each carrying the gRPC status code it maps to.

Servicers map only these to client-facing codes (STYLE.md #7): a bare ValueError or
RuntimeError is a bug and surfaces as INTERNAL with a logged traceback.
"""

from __future__ import annotations

import grpc


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


class Conflict(EngineError):
    """A concurrent operation (a second load) collides with one in progress."""

    code = grpc.StatusCode.ABORTED
