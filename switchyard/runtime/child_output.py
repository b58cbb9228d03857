"""The output of child processes an engine library starts itself, kept for error messages.

vLLM starts its engine core with multiprocessing, and the engine core starts the workers: their
output goes wherever this service's stdout and stderr go, so their last words ("Worker proc
died", a traceback) never reach a client. ``ChildOutput.capturing()`` points this process's
stdout and stderr at pipes while a library starts its processes, so the new processes inherit
the pipes; a thread per stream passes every byte on, unchanged, to where the output went before
and keeps the last lines. The pipes are this process's output only until ``release`` (called
once the first child exists), so the tail is the children's own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

logger = logging.getLogger(__name__)

TAIL_LINES = 200
MAX_LINE_CHARS = 2000
# A line that says something went wrong, in the words of Python, vLLM, llama.cpp or the C runtime.
ERROR_LINE = re.compile(
    r"\bERROR\b|\berror\b|Error\b|Exception\b|\bFatal\b|\bfatal\b|\bdied\b|\bKilled\b|Aborted|terminate called"
)


def last_error_line(lines: Iterable[str]) -> str:
    """The last line that reads like an error (a traceback's last line, a logged ERROR), or ""."""
    found = ""
    for line in lines:
        if ERROR_LINE.search(line):
            found = line.strip()
    return found[:MAX_LINE_CHARS]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ChildOutput:
    def __init__(self, name: str) -> None:
        self.name = name
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._threads: list[threading.Thread] = []

    @contextlib.contextmanager
    def capturing(self) -> Iterator[Callable[[], None]]:
        """Children started inside inherit the pipes; yields ``release``, which gives this
        process its own output back at once (it is given back on leaving in any case). Where
        the output cannot be redirected (a closed stdout), nothing is captured."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError):
                stream.flush()
        redirected: list[tuple[int, int]] = []  # (stream fd, a copy of what it was)
        for fd in (1, 2):
            try:
                redirected.append((fd, self._redirect(fd)))
            except OSError as exc:
                logger.warning("%s: cannot capture its processes' output: %s", self.name, exc)
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(AttributeError, ValueError):
                    stream.flush()
            for fd, saved in redirected:
                os.dup2(saved, fd)  # this process writes where it wrote before; the children keep the pipe

        try:
            yield release
        finally:
            release()

    def _redirect(self, fd: int) -> int:
        """Point ``fd`` at a new pipe read by a thread that passes the bytes on to what ``fd``
        was; return a copy of what it was."""
        saved = os.dup(fd)
        try:
            read_end, write_end = os.pipe()
        except OSError:
            os.close(saved)
            raise
        try:
            os.dup2(write_end, fd)
        except OSError:
            os.close(read_end)
            os.close(saved)
            raise
        finally:
            os.close(write_end)
        # read from the start: a full pipe would block whoever writes, this process included
        thread = threading.Thread(target=self._pump, args=(read_end, saved), name=f"{self.name} output", daemon=True)
        thread.start()
        self._threads.append(thread)
        return saved

    def _pump(self, read_end: int, target: int) -> None:
        """Pass the children's bytes on; keep their lines. Ends when the last of them exits."""
        pending = b""
        try:
            while chunk := os.read(read_end, 65536):
                with contextlib.suppress(OSError):  # where the output went is gone: keep reading
                    _write_all(target, chunk)
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()[-MAX_LINE_CHARS:]
                self.tail.extend(line.decode(errors="replace").rstrip()[:MAX_LINE_CHARS] for line in lines)
        finally:
            if pending:
                self.tail.append(pending.decode(errors="replace").rstrip())
            os.close(read_end)
            os.close(target)

    def last_error(self) -> str:
        return last_error_line(list(self.tail))

    def close(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for the pipes to end: call once the children are gone."""
        for thread in self._threads:
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]
