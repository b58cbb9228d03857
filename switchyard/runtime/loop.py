"""The event loop every service runs on: uvloop where it is installed (it is a dependency),
as vLLM's and uvicorn's servers do; its loop costs less CPU per socket event than asyncio's."""

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
