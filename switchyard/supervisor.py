"""``switchyard up``: the whole stack as processes on one machine, supervised.

Starts the engines, the router and the gateway in that order, each in its own session so a
Ctrl-C reaches only this supervisor, waits for each to be ready, loads the demo model on each
engine through the gateway, and prints where to go. Once the stack is up, a part that dies is
restarted after a back-off, as compose or Kubernetes would (the others reconnect to it, an
engine loads its models again on demand); a part that keeps dying, or one dying while the stack
starts, stops everything. On Ctrl-C or SIGTERM it stops every part (SIGTERM in reverse order,
then SIGKILL) and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.runtime.lifetime import tied_to_parent
from switchyard.runtime.lines import bounded_lines
from switchyard.runtime.secrets_env import environment_without

logger = logging.getLogger(__name__)


@dataclass
class Part:
    name: str
    argv: list[str]
    ready: Callable[[], Awaitable[bool]]
    # Secrets of the supervisor's environment this part does not get (switchyard.runtime.secrets_env).
    withheld: tuple[str, ...] = ()
    # Brings a restarted part back to where the stack had it (an engine: its demo model).
    after_restart: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
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


RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)  # before each restart of a part dying again and again
FAILURE_WINDOW_S = 300.0  # deaths further apart than this do not add up
RESTARTS_ENV = "SWITCHYARD_SERVICE_RESTARTS"  # the setting service_restarts of the part


class Supervisor:
    def __init__(
        self,
        parts: list[Part],
        ready_timeout_s: float = 600.0,
        stop_grace_s: float = 20.0,
        restart_backoff_s: Sequence[float] = RESTART_BACKOFF_S,
    ) -> None:
        self.parts = parts
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.restart_backoff_s = restart_backoff_s
        self.stopping = asyncio.Event()
        self.started = False  # every part ready once: from then on a death means a restart
        self.restarts: dict[str, int] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self.failure: str | None = None

    async def start_all(self) -> None:
        for part in self.parts:
            await self._start(part)
        self.started = True

    async def _start(self, part: Part) -> None:
        await self._spawn(part)
        self._watchers.append(asyncio.create_task(self._watch(part), name=f"watch {part.name}"))
        await self._until_ready(part)

    async def _spawn(self, part: Part, restarts: int = 0) -> None:
        logger.info("starting %s", part.name)
        part.proc = await asyncio.create_subprocess_exec(
            *tied_to_parent(part.argv, signal.SIGTERM),  # a killed supervisor still stops its parts
            env={**environment_without(part.withheld), RESTARTS_ENV: str(restarts)},  # shown in an engine's status
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._watchers.append(asyncio.create_task(self._relay(part), name=f"log {part.name}"))

    async def _until_ready(self, part: Part) -> None:
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
        """Restart ``part`` whenever it dies once the stack is up; stop everything when it dies
        while the stack starts, or more often in a row than there are back-off steps."""
        deaths: list[float] = []
        while True:
            assert part.proc is not None
            code = await part.proc.wait()
            if self.stopping.is_set():
                return
            now = time.monotonic()
            deaths = [t for t in deaths if now - t < FAILURE_WINDOW_S] + [now]
            if not self.started or len(deaths) > len(self.restart_backoff_s):
                self.failure = f"{part.name} exited with code {code}" + (
                    f" ({len(deaths)} times in {FAILURE_WINDOW_S:.0f}s)" if len(deaths) > 1 else ""
                )
                logger.error("%s; stopping everything", self.failure)
                self.stopping.set()
                return
            delay = self.restart_backoff_s[len(deaths) - 1]
            logger.error("%s exited with code %s; restarting it in %.0fs", part.name, code, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.stopping.wait()
            if self.stopping.is_set():
                return
            try:
                await self._spawn(part, self.restarts.get(part.name, 0) + 1)
                await self._until_ready(part)
            except (PartFailed, TimeoutError, OSError) as exc:
                logger.error("%s did not come back: %s", part.name, exc or "not ready in time")
                if part.proc.returncode is None:  # started but never ready: its death is the next one
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(part.proc.pid, signal.SIGKILL)
                continue
            self.restarts[part.name] = self.restarts.get(part.name, 0) + 1
            logger.info("%s restarted (%d restarts so far)", part.name, self.restarts[part.name])
            if part.after_restart is not None:
                try:
                    await part.after_restart()
                except PartFailed as exc:  # it serves, just not as before: say so, keep it
                    logger.error("%s restarted but: %s", part.name, exc)

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
