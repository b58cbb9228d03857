"""The processes of one vLLM engine instance, watched from the moment each appears.

``AsyncLLM`` starts an engine core process, which starts the workers; both kinds die in ways
vLLM reports only in their own log ("Engine core initialization failed. See root cause above",
``EngineDeadError``). ``EngineProcesses.build`` constructs the engine while it captures the new
processes' output (``ChildOutput``) and takes a pidfd of each as it appears
(``ProcessWatch``), so that when the instance fails, ``cause`` says which process died, how
(signal or exit code) and the last error line of its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from multiprocessing import resource_tracker
from typing import TypeVar

import psutil

from switchyard.runtime.child_output import ChildOutput
from switchyard.runtime.exits import ProcessWatch

T = TypeVar("T")
SCAN_S = 0.1  # how often new processes are looked for while the engine is built
SETTLE_S = 3.0  # how long a failure waits for a dying process's status before it is described


class EngineProcesses:
    def __init__(self, name: str, belongs: Callable[[psutil.Process], bool]) -> None:
        self.name = name
        self.watch = ProcessWatch(belongs)
        self.output = ChildOutput(f"vLLM {name}")

    async def build(self, make: Callable[[], T]) -> T:
        """``make()`` in a worker thread, its new processes watched and their output captured.
        This process's own output goes through the pipes only until the first of them exists."""
        self.watch.ignore(p.pid for p in await asyncio.to_thread(psutil.Process().children, True))
        # started once per service, and for its whole life: not with the pipes of one model
        await asyncio.to_thread(resource_tracker.ensure_running)
        with self.output.capturing() as release:
            building = asyncio.ensure_future(asyncio.to_thread(make))
            while not building.done():
                if await asyncio.to_thread(self.watch.scan):
                    release()  # the engine core holds the pipes now
                await asyncio.wait({building}, timeout=SCAN_S)
        await asyncio.to_thread(self.watch.scan)
        return building.result()

    def processes(self) -> list[psutil.Process]:
        return [p for p in self.watch.processes() if p.is_running()]

    def died(self) -> bool:
        return bool(self.watch.deaths())

    def killed(self) -> bool:
        """Whether a process of the instance was killed by a signal (not a refusal of the model)."""
        return any(death.signalled for death in self.watch.deaths())

    def cause(self) -> str:
        """Which process died and how, and the last error line of the instance's log; "" when
        none of its processes died and its log has no error."""
        deaths = self.watch.deaths()
        parts = []
        if deaths:
            more = f" (and {len(deaths) - 2} more)" if len(deaths) > 2 else ""
            parts.append("; ".join(str(d) for d in deaths[:2]) + more)
        if last := self.output.last_error():
            parts.append(f"last error in its log: {last}")
        return "; ".join(parts)

    async def settled_cause(self) -> str:
        """``cause`` once a failure has had a moment to show: a dying process's status is kept
        only once its parent has reaped it."""
        deadline = time.monotonic() + SETTLE_S
        while not self.watch.deaths() and time.monotonic() < deadline:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.1)
        return await asyncio.to_thread(self.cause)

    def close(self, timeout: float) -> None:
        """After the instance stopped: its pidfds closed, its output read to the end."""
        self.output.close(timeout)
        with contextlib.suppress(OSError):
            self.watch.close()
