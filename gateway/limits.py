"""The gateway's middleware, as pure ASGI: Starlette's BaseHTTPMiddleware (and so
``@app.middleware("http")``) would hide client disconnects from streaming responses.

RequestIdHeader: the request's id (``X-Request-ID``, the client's or a new one) bound to the
request and returned. RequestSizeLimit: a declared or actual (chunked) body over the limit gets
a 413 in the OpenAI error format before the route runs. ConcurrencyPerKey: at most so many
requests at once per API key, 429 with Retry-After above. RequestRecorder: requests and errors by
route and status, and one log line per API request.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import metrics
from gateway.errors import error_body_for
from switchyard import request_id

logger = logging.getLogger(__name__)
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})  # probes and scrapes: not worth a line each


class HttpMiddleware:
    """Passes anything but an HTTP request (lifespan, websockets) straight on; subclasses
    handle HTTP requests in ``http``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def header(scope: Scope, name: bytes) -> bytes | None:
    """The value of the request header ``name`` (lower case), if sent."""
    return next((value for key, value in scope.get("headers", []) if key == name), None)


class RequestIdHeader(HttpMiddleware):
    """Binds the request's id for everything that serves it (log lines, the response id, the
    gRPC request id) and returns it in ``X-Request-ID``. A malformed id gets a 400 (under a
    new id), never a header or a log line the client shaped."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = header(scope, request_id.HEADER.encode())
        rid = request_id.new_request_id()
        valid = given is None or request_id.is_valid(given.decode("latin-1"))
        if given is not None and valid:
            rid = given.decode("latin-1")
        request_id.bind(rid)
        returned = (request_id.HEADER.encode(), rid.encode())

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), returned]
            await send(message)

        if valid:
            await self.app(scope, receive, tagged_send)
            return
        await send_error(scope, tagged_send, 400, f"{request_id.HEADER} must be {request_id.RULE}")


async def send_error(
    scope: Scope, send: Send, status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """An error answer in the format of the API the path belongs to (OpenAI's or Anthropic's),
    sent from middleware (before any route)."""
    body = json.dumps(error_body_for(scope["path"], status, message)).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestSizeLimit(HttpMiddleware):
    """Reads the body first (at most ``max_bytes``, declared or chunked), then hands the app a
    receive that replays it and afterwards passes on what the client sends (a disconnect)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = (header(scope, b"content-length") or b"").decode() or "0"
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending it all
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._reject(scope, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        await send_error(scope, send, 413, f"request body larger than {self.max_bytes} bytes")


class ConcurrencyPerKey(HttpMiddleware):
    """At most ``limit`` requests at once per API key (the bearer token or ``x-api-key`` as
    sent; with no keys configured every client shares one budget); one more gets 429 with Retry-After before any
    work is done. Only keys with requests in flight are held, so the table stays bounded."""

    RETRY_AFTER_S = 1

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit
        self.in_flight: dict[bytes, int] = {}

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limit or scope["path"] in QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        key = header(scope, b"authorization") or header(scope, b"x-api-key") or b""
        count = self.in_flight.get(key, 0)
        if count >= self.limit:
            message = f"at most {self.limit} requests at once per API key (max_concurrent_per_key); retry"
            await send_error(scope, send, 429, message, ((b"retry-after", str(self.RETRY_AFTER_S).encode()),))
            return
        self.in_flight[key] = count + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.in_flight[key] - 1
            if left:
                self.in_flight[key] = left
            else:
                del self.in_flight[key]


class RequestRecorder(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            path = metrics.route_label(scope)
            metrics.REQUESTS.labels(path, str(status)).inc()
            if status >= 400:
                metrics.ERRORS.labels(path, str(status)).inc()
            if scope["path"] not in QUIET_PATHS:
                elapsed_ms = (time.perf_counter() - started) * 1000
                logger.info("%s %s %d in %.0f ms", scope["method"], path, status, elapsed_ms)
