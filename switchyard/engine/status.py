"""The live status of one engine, with change notification for WatchStatus.

The engine's model host is the single writer; any number of watchers read. Watchers always see the latest
status and never block the writer: a slow watcher skips intermediate states (as Kubernetes
watches coalesce), but never misses the current one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from switchyard.v1 import common_pb2
from switchyard.v1 import control_pb2 as pb


class StatusBoard:
    def __init__(self, engine: common_pb2.Engine.ValueType, engine_version: str = "") -> None:
        self._status = pb.EngineStatus(engine=engine, state=pb.MODEL_STATE_IDLE, engine_version=engine_version)
        self._status.updated_at.GetCurrentTime()
        self._changed = asyncio.Event()

    @property
    def status(self) -> pb.EngineStatus:
        """A copy of the current status (callers may modify it freely)."""
        copy = pb.EngineStatus()
        copy.CopyFrom(self._status)
        return copy

    def publish(self, status: pb.EngineStatus) -> None:
        """Replace the status (the caller keeps no reference); notify watchers if it changed."""
        status.updated_at.CopyFrom(self._status.updated_at)
        if status == self._status:
            return
        status.updated_at.GetCurrentTime()
        self._status = status
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def changed(self) -> asyncio.Event:
        """An event set at the next change (no copy of the status made)."""
        return self._changed

    def snapshot(self) -> tuple[pb.EngineStatus, asyncio.Event]:
        """The current status and an event that is set at the next change."""
        return self.status, self._changed

    async def watch(self) -> AsyncGenerator[pb.EngineStatus]:
        """The current status at once, then each change, until the caller stops iterating."""
        while True:
            status, changed = self.snapshot()
            yield status
            await changed.wait()

    async def wait_for(self, *, timeout: float | None = None, **fields: Any) -> pb.EngineStatus:
        """Wait until the named fields have the given values (used by tests and the servicer)."""
        async with asyncio.timeout(timeout):
            async for status in self.watch():
                if all(getattr(status, k) == v for k, v in fields.items()):
                    return status
        raise AssertionError("unreachable")
