"""Pulls from the Hugging Face hub in an engine service: one worker process per model being
pulled, shared by every caller who asks for it, cancelled when they have all gone.

The engine service owns its model roots, so it runs the pulls; the router fans a pull out to
the replicas of an engine as it does a load (replicas sharing a volume wait for each other on
a file lock in the worker). Progress shows in the engine's status while a pull runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock

from switchyard.engine.hub import ModelRef
from switchyard.errors import EngineError, InvalidArgument, error_for_code
from switchyard.runtime.lifetime import tied_to_parent
from switchyard.runtime.lines import bounded_lines
from switchyard.runtime.settings import EngineSettings
from switchyard.v1 import common_pb2
from switchyard.v1 import control_pb2 as pb

logger = logging.getLogger(__name__)

STATES = {
    "resolving": pb.PULL_STATE_RESOLVING,
    "waiting": pb.PULL_STATE_WAITING,
    "downloading": pb.PULL_STATE_DOWNLOADING,
}
MAX_PATTERNS = 32
# The HF_HUB_OFFLINE the user set, kept by a service that sets its own (vLLM's, so that vLLM
# never reaches for a hub): a pull worker runs with the user's.
USER_HUB_OFFLINE = "SWITCHYARD_USER_HF_HUB_OFFLINE"


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    if USER_HUB_OFFLINE in env:
        user = env.pop(USER_HUB_OFFLINE)
        if user:
            env["HF_HUB_OFFLINE"] = user
        else:
            env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_TOKEN", None)  # the token travels in the job, on stdin
    return env


def hub_token(settings: EngineSettings) -> str | None:
    """HF_TOKEN, or the token file the settings name; never logged."""
    if settings.hf_token_file is not None:
        with contextlib.suppress(OSError):
            return settings.hf_token_file.read_text(encoding="utf-8").strip() or None
    return os.environ.get("HF_TOKEN") or None


def _remove_staging(staging: Path) -> None:
    """Remove a stopped worker's files, unless another pull (a replica on a shared volume) took
    the model's lock meanwhile and carries on with them."""
    lock = filelock.FileLock(str(staging) + ".lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return
    try:
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()


@dataclass
class PullJob:
    """One model being pulled: its worker and its latest progress."""

    key: tuple[Any, ...]
    job: dict[str, Any] = field(repr=False)  # holds the token
    progress: pb.PullProgress
    callers: int = 0
    staging: Path | None = None
    error: EngineError | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    proc: asyncio.subprocess.Process | None = None

    @property
    def finished(self) -> bool:
        return self.progress.state in (pb.PULL_STATE_DONE, pb.PULL_STATE_FAILED)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class Pulls:
    def __init__(self, settings: EngineSettings, engine: common_pb2.Engine.ValueType, on_change: Callable[[], None]):
        self.settings = settings
        self.engine = engine
        self._on_change = on_change
        self._jobs: dict[tuple[Any, ...], PullJob] = {}

    def progress(self) -> list[pb.PullProgress]:
        """Pulls under way, for the engine's status."""
        return [job.progress for job in self._jobs.values()]

    def _job(self, request: pb.PullModelRequest) -> PullJob:
        ref = ModelRef.parse(request.model)
        patterns = [*request.include, *request.exclude]
        if len(patterns) > MAX_PATTERNS or any(len(p) > 256 or "\x00" in p for p in patterns):
            raise InvalidArgument(f"at most {MAX_PATTERNS} include/exclude patterns of at most 256 characters")
        if len(request.revision) > 256 or not request.revision.isprintable():
            raise InvalidArgument("revision must be a branch, tag or commit name")
        key = (ref.name, request.revision, tuple(request.include), tuple(request.exclude))
        job = self._jobs.get(key)
        if job is not None:
            return job
        root = self.settings.model_roots[0].resolve()
        root.mkdir(parents=True, exist_ok=True)
        job = PullJob(
            key=key,
            job={
                "model": ref.name,
                "revision": request.revision,
                "include": list(request.include),
                "exclude": list(request.exclude),
                "root": str(root),
                "engine": int(self.engine),
                "token": hub_token(self.settings),
            },
            progress=pb.PullProgress(model=ref.name, state=pb.PULL_STATE_RESOLVING, engine=self.engine),
        )
        self._jobs[key] = job
        job.task = asyncio.create_task(self._run(job), name=f"pull {ref.name}")
        self._on_change()
        return job

    async def pull(self, request: pb.PullModelRequest) -> AsyncIterator[pb.PullProgress]:
        """Progress of the pull of ``request`` (joined when it already runs), ending DONE; the
        pull's error when it fails. A pull all of whose callers went away is cancelled."""
        job = self._job(request)
        job.callers += 1
        try:
            while True:
                finished, changed = job.finished, job.changed
                copy = pb.PullProgress()
                copy.CopyFrom(job.progress)
                yield copy
                if finished:
                    break
                await changed.wait()
            if job.error is not None:
                raise job.error
        finally:
            job.callers -= 1
            if job.callers == 0 and not job.finished and job.task is not None:
                logger.info("pull of %s cancelled: nobody waits for it", job.progress.model)
                self._jobs.pop(job.key, None)  # a caller coming now starts afresh
                job.task.cancel()

    async def close(self) -> None:
        for job in list(self._jobs.values()):
            if job.task is not None:
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task

    # --- the worker -----------------------------------------------------------------------

    async def _run(self, job: PullJob) -> None:
        argv = [sys.executable, "-m", "switchyard.engine.pull_worker"]
        try:
            job.proc = await asyncio.create_subprocess_exec(
                *tied_to_parent(argv, signal.SIGKILL),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=worker_env(),
            )
            assert job.proc.stdin is not None and job.proc.stdout is not None and job.proc.stderr is not None
            job.proc.stdin.write(json.dumps(job.job).encode())
            await job.proc.stdin.drain()
            job.proc.stdin.close()
            relay = asyncio.create_task(self._relay(job.proc.stderr, job.progress.model))
            async for line in bounded_lines(job.proc.stdout, 64 * 1024):
                self._take(job, line)
            await job.proc.wait()
            await relay
            if not job.finished:
                self._fail(job, error_for_code("UNAVAILABLE", f"the pull worker exited with {job.proc.returncode}"))
        except asyncio.CancelledError:
            await self._stop(job)
            self._fail(job, error_for_code("CANCELLED", "the pull was cancelled"))
            raise
        except Exception as exc:
            logger.exception("pull of %s failed", job.progress.model)
            self._fail(job, error_for_code("INTERNAL", f"the pull failed: {type(exc).__name__}"))
        finally:
            self._jobs.pop(job.key, None)
            self._on_change()

    @staticmethod
    async def _relay(stream: asyncio.StreamReader, model: str) -> None:
        async for line in bounded_lines(stream):
            if line.strip():
                logger.info("pull %s: %s", model, line)

    def _take(self, job: PullJob, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            logger.warning("pull %s: unreadable worker output %r", job.progress.model, line[:200])
            return
        progress = job.progress
        kind = event.get("event")
        if kind == "staging":
            job.staging = Path(event["path"])
        elif kind == "progress":
            progress.state = STATES.get(event.get("state", ""), progress.state)
            for name in ("bytes_done", "bytes_total", "files_done", "files_total", "bytes_per_second"):
                if name in event:
                    setattr(progress, name, event[name])
            progress.current_file = event.get("current_file", progress.current_file)
            progress.revision = event.get("revision", progress.revision)
        elif kind == "done":
            progress.state = pb.PULL_STATE_DONE
            progress.model_path, progress.name, progress.revision = (
                event["model_path"],
                event["name"],
                event["revision"],
            )
            progress.bytes_done = progress.bytes_total = int(event.get("bytes", progress.bytes_total))
            progress.files_done = progress.files_total
            progress.current_file = ""
            logger.info("pulled %s (%s) into %s", progress.name, progress.revision[:12], progress.model_path)
        elif kind == "error":
            self._fail(job, error_for_code(event["code"], event["message"], event.get("reason", "")))
            return
        job.notify()
        self._on_change()

    def _fail(self, job: PullJob, error: EngineError) -> None:
        if job.finished:
            return
        logger.warning("pull of %s failed: %s", job.progress.model, error)
        job.error = error
        job.progress.state = pb.PULL_STATE_FAILED
        job.progress.error = str(error)
        job.notify()
        self._on_change()

    async def _stop(self, job: PullJob) -> None:
        """Stop the worker and remove what it had written: a cancelled pull leaves nothing."""
        if job.proc is not None and job.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                job.proc.kill()
            await job.proc.wait()
        if job.staging is not None:
            await asyncio.to_thread(_remove_staging, job.staging)
