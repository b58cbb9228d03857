"""One request id from the client to the engine.

The gateway takes the client's ``X-Request-ID`` (or makes one), returns it, ends the response
id with it and sends it as the gRPC ``request_id``; the router and the engine take it from
there. Each service binds it to the task serving the request, and every log line written
there carries it (``switchyard.runtime.logs``), so one grep follows a request through all
three services.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "x-request-id"
MAX_CHARS = 128
# What survives a header, a gRPC request id, a log line and a response id unchanged.
_ALLOWED = re.compile(rf"[A-Za-z0-9._:\-]{{1,{MAX_CHARS}}}")
RULE = f"1 to {MAX_CHARS} characters of A-Z, a-z, 0-9 and . _ : -"

current: ContextVar[str] = ContextVar("switchyard_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_valid(value: str) -> bool:
    return _ALLOWED.fullmatch(value) is not None


def bind(request_id: str) -> None:
    """Make ``request_id`` the id of the current task's log lines (a task's context is its
    own, so this ends with the task). A gRPC client's id may be anything: one that is not a
    valid header value is logged escaped and cut, never as sent."""
    current.set(request_id if not request_id or is_valid(request_id) else ascii(request_id[:MAX_CHARS]))
