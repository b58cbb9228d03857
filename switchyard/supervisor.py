"""``switchyard up``: the whole stack as processes on one machine, supervised.

Starts the engines, the router and the gateway in that order, each in its own session so a
Ctrl-C reaches only this supervisor, waits for each to be ready, loads the demo model on each
engine through the gateway, and prints where to go. On Ctrl-C, SIGTERM, or the death of any
part, it stops every part (SIGTERM in reverse order, then SIGKILL) and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.runtime.lifetime import tied_to_parent
from switchyard.runtime.lines import bounded_lines

logger = logging.getLogger(__name__)


@dataclass
class Part:
    name: str
    argv: list[str]
    ready: Callable[[], Awaitable[bool]]
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)


def grpc_ready(address: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with grpc.aio.insecure_channel(address) as channel:
            try:
                answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    return check


def http_ready(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    return check


class PartFailed(Exception):
    pass


class Supervisor:
    def __init__(self, parts: list[Part], ready_timeout_s: float = 600.0, stop_grace_s: float = 20.0) -> None:
        self.parts = parts
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.stopping = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []
        self.failure: str | None = None

    async def start_all(self) -> None:
        for part in self.parts:
            await self._start(part)

    async def _start(self, part: Part) -> None:
        logger.info("starting %s", part.name)
        part.proc = await asyncio.create_subprocess_exec(
            *tied_to_parent(part.argv, signal.SIGTERM),  # a killed supervisor still stops its parts
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._watchers.append(asyncio.create_task(self._relay(part), name=f"log {part.name}"))
        self._watchers.append(asyncio.create_task(self._watch(part), name=f"watch {part.name}"))
        async with asyncio.timeout(self.ready_timeout_s):
            while not await part.ready():
                if self.stopping.is_set():
                    raise PartFailed(self.failure or f"stopped while starting {part.name}")
                await asyncio.sleep(0.2)  # readiness poll interval
        logger.info("%s is ready", part.name)

    async def _relay(self, part: Part) -> None:
        assert part.proc is not None and part.proc.stdout is not None
        async for line in bounded_lines(part.proc.stdout):
            sys.stderr.write(f"[{part.name}] {line}\n")

    async def _watch(self, part: Part) -> None:
        assert part.proc is not None
        code = await part.proc.wait()
        if not self.stopping.is_set():
            self.failure = f"{part.name} exited with code {code}"
            logger.error("%s; stopping everything", self.failure)
            self.stopping.set()

    async def stop_all(self) -> None:
        """SIGTERM in reverse start order, wait, SIGKILL what is left."""
        self.stopping.set()
        for part in reversed(self.parts):
            proc = part.proc
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(self.stop_grace_s):
                    await proc.wait()
            except TimeoutError:
                logger.warning("%s did not stop in %.0fs; killing it", part.name, self.stop_grace_s)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # also any child the part left behind
            await proc.wait()
        for task in self._watchers:
            task.cancel()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
