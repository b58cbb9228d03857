"""Test helpers: run a service as a real process, wait on conditions with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import openai
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard.runtime.lifetime import tied_to_parent
from switchyard.runtime.net import free_port
from switchyard.v1 import control_pb2_grpc, inference_pb2_grpc

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
_OPENAI_CLIENTS: dict[tuple[str, float], openai.OpenAI] = {}


def openai_client(base_url: str, timeout: float) -> openai.OpenAI:
    """One SDK client per address for the whole run, closed at its end (tests/conftest.py): a
    client made per call and left to the garbage collector leaves its pooled sockets to it, and
    the ResourceWarning then fails whichever test happens to run when it is collected."""
    key = (base_url, timeout)
    if key not in _OPENAI_CLIENTS:
        _OPENAI_CLIENTS[key] = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=timeout)
    return _OPENAI_CLIENTS[key]


def close_openai_clients() -> None:
    while _OPENAI_CLIENTS:
        _OPENAI_CLIENTS.popitem()[1].close()


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def until(condition: Callable[[], object], what: str = "a condition", timeout: float = 10.0) -> None:
    """``wait_until`` inside an event loop: for a state other tasks or processes reach that
    offers no event to await; fails after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110 (plain state, no event to wait on)
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


class StatusFollower:
    """Collects WatchStatus events in a thread until a state is reached (or the stream ends);
    with ``after``, until it is reached after that other state was seen."""

    def __init__(self, watch: Any, until_state: int, after: int | None = None) -> None:
        self.watch = watch
        self.until_state = until_state
        self.after = after
        self.seen: list[Any] = []
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        passed = self.after is None
        with contextlib.suppress(grpc.RpcError):
            for event in self.watch:
                self.seen.append(event.status)
                passed = passed or event.status.state == self.after
                if passed and event.status.state == self.until_state:
                    return

    def join(self, timeout: float) -> list[Any]:
        self._thread.join(timeout)
        self.watch.cancel()
        return self.seen


class ServiceProcess:
    """A switchyard service started with ``python -m MODULE`` on a free port."""

    def __init__(
        self, module: str, args: list[str], log_path: Path, env: dict[str, str] | None = None, http: bool = False
    ) -> None:
        self.http = http  # readiness by GET /health instead of grpc.health.v1
        self.module = module
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.args = ["--port", str(self.port), *args]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            # Tied to the test process, so a killed pytest leaves no services behind.
            tied_to_parent([sys.executable, "-m", self.module, *self.args], signal.SIGTERM),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.channel = grpc.insecure_channel(self.address)
        wait_until(self._healthy, timeout, f"{self.module} to serve")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None and self.channel is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.module} exited with {self.proc.returncode}:\n{self.log_tail()}")
        if self.http:
            try:
                return httpx.get(f"http://{self.address}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        try:
            answer = health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def inference(self) -> inference_pb2_grpc.InferenceStub:
        assert self.channel is not None
        return inference_pb2_grpc.InferenceStub(self.channel)

    @property
    def control(self) -> control_pb2_grpc.ControlStub:
        assert self.channel is not None
        return control_pb2_grpc.ControlStub(self.channel)

    def children(self) -> list[psutil.Process]:
        assert self.proc is not None
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.proc.pid).children(recursive=True)
        return []

    def kill(self) -> list[psutil.Process]:
        """SIGKILL the service alone (as an OOM killer would); the processes it had started."""
        assert self.proc is not None
        children = self.children()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        if self.channel is not None:
            self.channel.close()
        return children

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait; the exit code. Kills the group if it does not stop in time."""
        assert self.proc is not None
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(f"{self.module} did not stop on SIGTERM:\n{self.log_tail()}") from None
        return self.proc.returncode


# Figures a tier measured (fault suite, container tier), printed after the run by the
# pytest_terminal_summary hook in tests/conftest.py, one section per title.
REPORTS: dict[str, list[str]] = {}


def report_section(title: str) -> list[str]:
    return REPORTS.setdefault(title, [])
