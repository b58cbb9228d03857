"""The ``llama-server`` child process: spawn, wait for health, watch, stop.

One owner (the engine, under its lock) drives every transition. Start spawns the child in
its own process group on a private loopback port and polls ``/health`` to a deadline while
watching for an early exit; stop sends SIGTERM to the group, waits, then SIGKILLs
(the habit of llama-swap's process manager). The last log lines are kept for error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from switchyard.runtime.lifetime import tied_to_parent
from switchyard.runtime.lines import bounded_lines
from switchyard.runtime.net import free_port
from switchyard.runtime.secrets_env import ALL_SECRETS, environment_without

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 40


class ChildExited(Exception):
    """llama-server exited while we were waiting for it."""


class LlamaServerProcess:
    def __init__(self, binary: Path, args: Sequence[str], on_log: Callable[[str], None] | None = None) -> None:
        self.binary = binary
        self.on_log = on_log
        self.host = "127.0.0.1"  # loopback only: the engine service is its one client
        self.port = free_port()
        self.args = [*args, "--host", self.host, "--port", str(self.port)]
        self.base_url = f"http://{self.host}:{self.port}"
        self.log_tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._proc: asyncio.subprocess.Process | None = None
        self._log_task: asyncio.Task[None] | None = None
        self.stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def last_log(self, lines: int = 12) -> str:
        return "\n".join(list(self.log_tail)[-lines:])

    async def spawn(self) -> None:
        """Start the child; ``wait_healthy`` then waits until it serves."""
        logger.info("starting %s %s", self.binary, " ".join(self.args))
        # tied_to_parent: the kernel kills llama-server if this service dies, even by SIGKILL,
        # so no orphan keeps the model's memory
        self._proc = await asyncio.create_subprocess_exec(
            *tied_to_parent([str(self.binary), *self.args], signal.SIGKILL),
            env=environment_without(ALL_SECRETS),  # the child needs no key or token
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches any helpers
        )
        self._log_task = asyncio.create_task(self._pump_log(), name=f"llama-server {self.port} log")

    async def wait_healthy(self, http: httpx.AsyncClient, timeout_s: float) -> None:
        """Wait until ``/health`` answers 200; raise ChildExited or TimeoutError."""
        async with asyncio.timeout(timeout_s):
            while True:
                if not self.alive:
                    await self._drain_log()
                    raise ChildExited(
                        f"llama-server exited with code {self.returncode} while starting:\n" + self.last_log()
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = await http.get(f"{self.base_url}/health", timeout=2.0)
                    if response.status_code == 200:
                        return
                await self.wait_exit(timeout=0.1)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    async def wait_exit(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit (up to ``timeout``); its exit code, or None if running."""
        if self._proc is None:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                return await self._proc.wait()
        return None

    async def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, wait ``grace_s``, then SIGKILL; idempotent."""
        self.stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            self._signal_group(proc.pid, signal.SIGTERM)
            if await self.wait_exit(grace_s) is None:
                logger.warning("llama-server %d ignored SIGTERM; killing it", proc.pid)
                self._signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        await self._drain_log()

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

    async def _pump_log(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for text in bounded_lines(self._proc.stdout):
            line = text.rstrip()
            if line:
                self.log_tail.append(line)
                if self.on_log is not None:
                    self.on_log(line)
                logger.debug("llama-server[%d]: %s", self._proc.pid, line)

    async def _drain_log(self) -> None:
        if self._log_task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._log_task
