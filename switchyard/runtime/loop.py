"""The router's event loop: uvloop, as vLLM's and uvicorn's servers use; it costs less CPU per
socket event than asyncio's.

Only for services that start no child processes. uvloop forks to spawn, and gRPC's fork
handlers then run in the child: under traffic the child aborts in gRPC's poller ("Check failed:
next_worker->state == KICKED") before it can exec, so a llama-server or pull worker never
starts. asyncio spawns with vfork/posix_spawn, which runs no handlers, so the engine services
(which start llama-server, pull workers and vLLM's processes) stay on asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; kept for odd platforms
        return asyncio.run(main)
    return uvloop.run(main)
