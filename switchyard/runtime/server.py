"""gRPC server bootstrap shared by engines and the router.

It adds the standard health and reflection services, serves Prometheus metrics, and shuts down
in the order vLLM's and smg's gRPC servers use: on SIGTERM/SIGINT health goes NOT_SERVING,
the server stops taking new calls and gives in-flight streams ``shutdown_grace_s`` to finish
before cancelling them, and only then the service's own cleanup (e.g. the engine) runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from switchyard.runtime.service_token import RequireServiceToken, read_token
from switchyard.runtime.settings import ServiceSettings

logger = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# Streams of generated tokens can be long-lived; keep idle connections healthy.
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class _Malformed:
    """Stands for a request whose bytes did not parse; the method answers INVALID_ARGUMENT."""

    def __init__(self, error: Exception) -> None:
        self.error = error


async def _refuse(request: _Malformed, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request message: {request.error}")


class MalformedRequests(grpc.aio.ServerInterceptor):
    """Malformed request bytes get INVALID_ARGUMENT naming the parse error, not grpc's own
    INTERNAL "Exception deserializing request!". grpc.aio tells async generators from
    coroutines by the handler function, so a streamed method is re-yielded through one more
    async generator (well under a microsecond per message)."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}  # per method, built once

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            wrapped = _wrap(await continuation(handler_call_details))
            if wrapped is not None:  # only methods that exist: a client naming others grows nothing
                self._wrapped[method] = wrapped
        return wrapped


def _wrap(handler: grpc.RpcMethodHandler[Any, Any] | None) -> grpc.RpcMethodHandler[Any, Any] | None:
    if handler is None or handler.request_deserializer is None or handler.request_streaming:
        return handler
    parse = handler.request_deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # protobuf's DecodeError, or a UnicodeDecodeError
            return _Malformed(exc)

    serialize = handler.response_serializer
    if handler.response_streaming:
        stream: Any = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, _Malformed):
                await _refuse(request, context)
            responses = stream(request, context)
            try:
                async for response in responses:
                    yield response
            finally:
                await responses.aclose()  # a cancel or close reaches the method's own generator

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserialize, serialize)
    unary: Any = handler.unary_unary

    async def unary_unary(request: Any, context: Any) -> Any:
        if isinstance(request, _Malformed):
            await _refuse(request, context)
        return await unary(request, context)

    return grpc.unary_unary_rpc_method_handler(unary_unary, deserialize, serialize)


class GrpcService:
    """A grpc.aio server with health, reflection, metrics and graceful shutdown."""

    def __init__(self, settings: ServiceSettings, name: str) -> None:
        self.settings = settings
        self.name = name
        self.token = read_token(settings.service_token_file)  # also what a router sends its engines
        checks: list[grpc.aio.ServerInterceptor] = [RequireServiceToken(self.token)] if self.token else []
        self.server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[*checks, MalformedRequests()])
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = []
        self._stop = asyncio.Event()
        self.port = 0

    def add_services(self, names: Iterable[str]) -> None:
        """Record fully-qualified service names for reflection and health."""
        self._service_names.extend(names)

    async def set_serving(self, service: str, serving: bool) -> None:
        await self.health.set(service, SERVING if serving else NOT_SERVING)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, on_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
        """Serve until SIGTERM/SIGINT or ``request_stop()``, then shut down gracefully."""
        names = [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        address = f"{self.settings.host}:{self.settings.port}"
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC port {address}")
        if self.settings.metrics_port is not None:
            start_http_server(self.settings.metrics_port, addr=self.settings.host)
        await self.server.start()
        await self.health.set("", SERVING)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        logger.info("%s serving gRPC on %s:%d", self.name, self.settings.host, self.port)
        try:
            await self._stop.wait()
        finally:
            logger.info("%s shutting down (grace %.1fs)", self.name, self.settings.shutdown_grace_s)
            await self.health.enter_graceful_shutdown()
            await self.server.stop(self.settings.shutdown_grace_s)
            if on_shutdown is not None:
                await on_shutdown()
            logger.info("%s stopped", self.name)
