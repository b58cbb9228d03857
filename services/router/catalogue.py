"""What each backend could load: its ``ListModels`` names (and the aliases of its presets),
cached for a few seconds.

Read only when a request names a model that no backend holds in any state, so the hot path
never pays for it; the cache keeps a stream of requests for an unknown name from making every
backend walk its model roots each time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import grpc

from services.router.backends import Backend
from switchyard.v1 import control_pb2

logger = logging.getLogger(__name__)


class Catalogue:
    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._names: dict[str, tuple[float, frozenset[str]]] = {}  # address -> (read at, names)
        self._lock = asyncio.Lock()

    async def holders(self, model: str, backends: Sequence[Backend]) -> set[str]:
        """Addresses of the reachable backends that can load ``model`` on demand."""
        candidates = [b for b in backends if b.reachable and b.status.autoload]
        async with self._lock:
            now = time.monotonic()
            stale = [
                b for b in candidates if now - self._names.get(b.address, (-self.ttl_s, frozenset()))[0] >= self.ttl_s
            ]
            answers = await asyncio.gather(
                *(b.control.ListModels(control_pb2.ListModelsRequest(engine=b.engine), timeout=10) for b in stale),
                return_exceptions=True,
            )
            for backend, answer in zip(stale, answers, strict=True):
                if isinstance(answer, grpc.aio.AioRpcError):
                    logger.warning("listing the models of %s failed: %s", backend.address, answer.details())
                elif isinstance(answer, BaseException):
                    raise answer
                else:
                    self._names[backend.address] = (
                        now,
                        frozenset(n for m in answer.models for n in (m.name, *m.aliases)),
                    )
        return {b.address for b in candidates if model in self._names.get(b.address, (0.0, frozenset()))[1]}
