"""A watcher process that kills what a service started when the service is killed.

vLLM starts its engine core (and that, its workers) itself, so ``tied_to_parent`` cannot tie
them to the engine service; after a SIGKILL of the service they would live on, holding the
model's memory. ``Reaper.start()`` spawns this small process beside the service. The service
tells it the pids it must not leave behind (one line per ``watch`` call, through the reaper's
stdin); when the service exits, for whatever reason, the kernel closes that pipe, and the
reaper kills each of those processes still running. After a clean shutdown there is nothing
left to kill. A line written before a SIGKILL is still read: pipe data outlives its writer.

Usage (internal): ``python -m switchyard.runtime.reaper`` with the pipe as stdin.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterable

import psutil


class Reaper:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc

    @classmethod
    def start(cls) -> Reaper:
        """Its own session, so a signal to our process group (a Ctrl-C) spares it."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "switchyard.runtime.reaper"], stdin=subprocess.PIPE, start_new_session=True
        )
        return cls(proc)

    def watch(self, pids: Iterable[int]) -> None:
        """Kill these processes if this service dies before they do."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(" ".join(str(pid) for pid in pids).encode() + b"\n")
        self._proc.stdin.flush()


def main() -> None:
    watched: list[psutil.Process] = []
    for line in sys.stdin.buffer:  # ends when the service is gone: the pipe closes with it
        for token in line.split():
            with contextlib.suppress(psutil.Error, ValueError):
                watched.append(psutil.Process(int(token)))
    for process in watched:
        with contextlib.suppress(psutil.Error):
            process.kill()  # psutil checks the pid was not reused by another process since


if __name__ == "__main__":
    main()
