"""One model of an engine service, and the single owner of its state.

A slot takes a model from LOADING to LOADED or ERROR, counts the requests that use it (or wait
for it), watches for its engine dying (and restarts it per policy), and stops it so that
nothing of it is left: a stop returns only once every process of the model has exited, and it
runs to its end even when the caller that asked for it goes away. Adapters only launch, run and
stop; any failure they did not foresee becomes ERROR here, with an INTERNAL status and the
cause logged, never a slot stuck in LOADING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import psutil
from google.protobuf.timestamp_pb2 import Timestamp

from switchyard.engine.protocol import EngineAdapter, LoadSpec, ModelInfo, RunningModel
from switchyard.errors import EngineError, Internal, Unavailable
from switchyard.v1 import control_pb2 as pb

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlotPolicy:
    """How a slot watches and restarts its model (from the engine settings)."""

    poll_s: float = 0.5
    restart_on_crash: bool = True
    max_restarts: int = 5
    restart_window_s: float = 300.0
    restart_backoff_s: float = 1.0
    stop_timeout_s: float = 30.0


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _memory_of(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


class ModelSlot:
    def __init__(
        self,
        spec: LoadSpec,
        adapter: EngineAdapter,
        policy: SlotPolicy,
        on_change: Callable[[], None],
        load_lock: asyncio.Lock,
    ) -> None:
        self.spec = spec  # what was asked
        self.adapter = adapter
        self.policy = policy
        self._on_change = on_change
        self._load_lock = load_lock  # the engine's: a restart waits for any load, as a load would
        self.running: RunningModel | None = None  # what is loaded
        self.info: ModelInfo | None = None
        self.state: pb.ModelState.ValueType = pb.MODEL_STATE_LOADING
        self.error = ""
        self.load_error: EngineError | None = None  # why the last load failed, with its code
        self.failed_at = 0.0  # monotonic time of the last failure
        self.progress = 0.0
        self.message = "queued"
        self.in_flight = 0  # requests using the model or waiting for it
        self.asked_at = time.time()
        self.loaded_at: float | None = None
        self.last_used = time.monotonic()  # for the keep-alive timer
        self.last_used_at = time.time()  # the same moment, for people
        self.occupancy = pb.Load()
        self.memory_bytes = 0
        self.restarting = False
        self.removed = False
        self._removed = asyncio.Event()
        self._settled = asyncio.Event()  # set while the state is not going to change by itself
        self._lock = asyncio.Lock()  # held by every transition
        self._crashes: deque[float] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def resident(self) -> bool:
        """Holds (or is about to hold) the engine's memory: counts against max_models."""
        return self.state in (pb.MODEL_STATE_LOADING, pb.MODEL_STATE_LOADED) or self.restarting

    @property
    def busy(self) -> bool:
        return self.in_flight > 0

    # --- transitions ----------------------------------------------------------------------

    def _set(self, state: pb.ModelState.ValueType, **fields: object) -> None:
        self.state = state
        for name, value in fields.items():
            setattr(self, name, value)
        if state == pb.MODEL_STATE_LOADING or self.restarting:
            self._settled.clear()
        else:
            self._settled.set()
        self._on_change()

    def _progress(self, progress: float, message: str) -> None:
        if self.state == pb.MODEL_STATE_LOADING and progress >= self.progress:
            self.progress, self.message = progress, message
            self._on_change()

    async def start(self) -> None:
        """LOADING until the model serves: LOADED, or ERROR and the error raised."""
        async with self._lock:
            if self.removed:
                raise Unavailable(f"model {self.name} was unloaded before it loaded")
            await self._start_locked()

    async def _start_locked(self) -> None:
        self.load_error = None
        self._set(pb.MODEL_STATE_LOADING, progress=0.0, message="starting", error="")
        running: RunningModel | None = None
        try:
            running = await self.adapter.launch(self.spec, self._progress)
            info = await running.ready(self._progress)
        except BaseException as exc:
            error = self._load_error(exc)
            if running is not None:
                await asyncio.shield(self._stop_running(running))
            self.restarting = False
            self.failed_at, self.load_error = time.monotonic(), error
            self._set(pb.MODEL_STATE_ERROR, error=str(error), progress=0.0, message="")
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise error from exc
        self.running, self.info = running, info
        self.loaded_at = time.time()
        self._touch()
        self.restarting = False
        self._set(pb.MODEL_STATE_LOADED, progress=1.0, message="loaded")
        self._spawn(self._watch(running), f"watch {self.name}")

    def _load_error(self, exc: BaseException) -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        if isinstance(exc, asyncio.CancelledError):
            return Unavailable(f"loading {self.name} was cancelled")
        logger.error("loading %s failed unexpectedly", self.name, exc_info=exc)
        return Internal(f"loading {self.name} failed: {type(exc).__name__}: {exc}")

    def abandon(self, error: EngineError) -> None:
        """A load that never started (no room for it, the service stopping): ERROR, settled."""
        self.failed_at, self.load_error = time.monotonic(), error
        self._set(pb.MODEL_STATE_ERROR, error=str(error), message="")

    def stop(self) -> asyncio.Task[None]:
        """Abort the model's requests and stop it; the task ends once its processes are gone.
        One stop per slot, which runs on if whoever awaits it goes away (shield it)."""
        if self._stopping is None:
            self.removed = True
            self._removed.set()
            self._stopping = asyncio.create_task(self._stop(), name=f"stop {self.name}")
        return self._stopping

    async def _stop(self) -> None:
        async with self._lock:
            for task in self._tasks:
                task.cancel()  # a watch or a restart waiting for a lock, never inside this one
            running = self.running
            if running is not None:
                await self._stop_running(running)
            self.running, self.info = None, None
            self.restarting = False
            self._set(pb.MODEL_STATE_IDLE, occupancy=pb.Load(), memory_bytes=0)

    async def _stop_running(self, running: RunningModel) -> None:
        """Stop the engine instance, then make sure its processes are gone, whatever happens."""
        processes = running.processes()
        try:
            async with asyncio.timeout(self.policy.stop_timeout_s):
                await running.stop()
        except Exception:
            logger.exception("stopping %s failed; killing its processes", self.name)
        finally:
            _, alive = await asyncio.to_thread(psutil.wait_procs, processes, self.policy.stop_timeout_s)
            for process in alive:
                logger.warning("%s: process %d outlived the stop; killing it", self.name, process.pid)
                with contextlib.suppress(psutil.Error):
                    process.kill()
            if alive:
                await asyncio.to_thread(psutil.wait_procs, alive, 5.0)

    # --- watching and restarting ----------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh(self) -> None:
        """Read the model's occupancy and memory now."""
        running = self.running
        if running is None:
            return
        occupancy = await running.occupancy()
        memory = await asyncio.to_thread(_memory_of, running.processes())
        if running is self.running:
            self.occupancy, self.memory_bytes = occupancy, memory
            self._on_change()

    async def _watch(self, running: RunningModel) -> None:
        failed = asyncio.ensure_future(running.failed())
        try:
            while not failed.done():
                try:
                    await self.refresh()
                except Exception:
                    logger.exception("%s: reading its figures failed", self.name)
                await asyncio.wait({failed}, timeout=self.policy.poll_s)
            reason = failed.result()
        except Exception as exc:
            logger.exception("%s: watching its engine failed", self.name)
            reason = f"watching the engine failed: {type(exc).__name__}: {exc}"
        finally:
            failed.cancel()
        await self._crashed(running, reason)

    async def _crashed(self, running: RunningModel, reason: str) -> None:
        async with self._lock:
            if self.running is not running or self.removed:
                return  # stopped on purpose
            now = time.monotonic()
            self._crashes.append(now)
            while self._crashes and now - self._crashes[0] > self.policy.restart_window_s:
                self._crashes.popleft()
            policy = self.policy
            self.restarting = policy.restart_on_crash and len(self._crashes) <= policy.max_restarts
            if policy.restart_on_crash and not self.restarting:
                reason += "\n(restart limit reached; load again to retry)"
            logger.error("%s: %s", self.name, reason)
            # requests see the failure at once (and wait, when a restart comes); then the rest
            self.running, self.info, self.failed_at = None, None, now
            self._set(pb.MODEL_STATE_ERROR, error=reason, occupancy=pb.Load(), memory_bytes=0)
            await self._stop_running(running)
        if self.restarting:
            delay = policy.restart_backoff_s * 2 ** (len(self._crashes) - 1)
            self._spawn(self._restart(delay), f"restart {self.name}")

    async def _restart(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):  # back-off between restarts, cut short by a stop
                await self._removed.wait()
        async with self._load_lock, self._lock:  # never beside another load: one at a time
            if self.removed or self.running is not None:
                return
            self._set(pb.MODEL_STATE_LOADING, message="restarting")
            try:
                await self._start_locked()
                return
            except EngineError as exc:
                reason = f"restarting failed: {exc}"
        # a failed restart counts as a crash: try again within the policy's budget
        self.restarting = True  # _crashed needs a running model; account for it here
        now = time.monotonic()
        self._crashes.append(now)
        if len(self._crashes) <= self.policy.max_restarts and not self.removed:
            self._set(pb.MODEL_STATE_ERROR, error=reason)
            delay = self.policy.restart_backoff_s * 2 ** (len(self._crashes) - 1)
            self._spawn(self._restart(delay), f"restart {self.name}")
        else:
            self.restarting = False
            self._set(pb.MODEL_STATE_ERROR, error=reason + "\n(restart limit reached; load again to retry)")

    # --- serving --------------------------------------------------------------------------

    async def settled(self) -> None:
        """Wait while the model is loading or about to restart."""
        await self._settled.wait()

    def claim(self) -> None:
        """One more request uses the model or waits for it: it is busy (no eviction, no
        keep-alive expiry). Shown with the next occupancy refresh: no status event per request."""
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self._touch()

    def _touch(self) -> None:
        self.last_used, self.last_used_at = time.monotonic(), time.time()

    def expires_in(self, now: float) -> float | None:
        """Seconds until an idle model is due for unloading; None when it is not."""
        if self.spec.keep_alive_s <= 0 or self.state != pb.MODEL_STATE_LOADED or self.in_flight or self.removed:
            return None
        return self.last_used + self.spec.keep_alive_s - now

    def status(self) -> pb.ModelStatus:
        info = self.info
        status = pb.ModelStatus(
            name=self.name,
            aliases=self.spec.aliases,
            model_path=str(self.spec.path),
            state=self.state,
            error=self.error,
            load_progress=self.progress,
            load_message=self.message,
            process_alive=self.running is not None,
            load=self.occupancy,
            device=self.running.device if self.running is not None else "",
            max_model_len=info.max_model_len if info else 0,
            in_flight=self.in_flight,
            keep_alive_s=self.spec.keep_alive_s,
            memory_bytes=self.memory_bytes,
            task=self.spec.task,
            tool_parser=info.tool_parser if info else "",
            reasoning_parser=info.reasoning_parser if info else "",
        )
        if self.loaded_at is not None:
            status.loaded_at.CopyFrom(_timestamp(self.loaded_at))
            status.last_used_at.CopyFrom(_timestamp(self.last_used_at))
        if self.expires_in(self.last_used) is not None:
            status.expires_at.CopyFrom(_timestamp(self.last_used_at + self.spec.keep_alive_s))
        return status
