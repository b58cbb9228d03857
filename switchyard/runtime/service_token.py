"""The token our services present to each other.

With ``service_token_file`` set, every gRPC service (router, engines) refuses a call without
``authorization: Bearer <token>`` with UNAUTHENTICATED, health checks and reflection aside (probes
carry no secrets); the gateway and the router send it on every call they make. So a client that can
reach the router or an engine, but holds no token, can neither generate nor load: the gateway
and its API keys stay the only door. The token comes from a file (a mounted Secret, or the one
``switchyard up`` writes) and is never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from switchyard.runtime.net import CHANNEL_OPTIONS

METADATA_KEY = "authorization"
OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")  # probes and discovery
REFUSAL = "missing or wrong service token (authorization: Bearer <token>)"


def read_token(path: Path | None) -> str | None:
    """The token in ``path`` (one line of printable ASCII), or None when unset."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise SystemExit(f"cannot read the service token: {exc}") from None
    if not token or not (token.isascii() and token.isprintable()):
        raise SystemExit(f"{path}: a service token is one line of printable ASCII")
    return token


def channel(address: str, token: str | None, options: list[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    """A channel to one of our services whose unary calls send the token (if any). Streamed
    calls pass ``call_metadata(token)`` themselves: grpc.aio's stream interceptors cost about
    20 us of CPU per message (measured on Generate), too much for the token path."""
    interceptors = [_SendToken(token)] if token else None
    return grpc.aio.insecure_channel(address, options=options or CHANNEL_OPTIONS, interceptors=interceptors)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The metadata a call sends: the token, or nothing."""
    return ((METADATA_KEY, f"Bearer {token}"),) if token else None


class _SendToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._pair = (METADATA_KEY, f"Bearer {token}")

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        metadata.add(*self._pair)
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


class RequireServiceToken(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for a call without the token; compared in constant time."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_METHODS):
            return handler
        metadata: Any = handler_call_details.invocation_metadata or ()
        given = next((value for key, value in metadata if key == METADATA_KEY), "")
        given = given.encode() if isinstance(given, str) else given
        if hmac.compare_digest(given, self._expected):
            return handler
        return _refusing(handler)


async def _refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)


async def _refuse_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
    yield  # never reached: makes this the async generator a streamed method needs


def _refusing(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape that answers UNAUTHENTICATED (the request left unparsed)."""
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_refuse_stream)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_refuse_stream)
    return grpc.unary_unary_rpc_method_handler(_refuse)
