"""How a process ended, in words, even when it was not our child.

An engine's processes are often grandchildren of the service (vLLM's workers are children of
its engine core), so their exit status goes to their own parent, not to us. Linux 6.15 keeps it
for anyone holding a pidfd opened while the process lived (``PIDFD_GET_INFO`` with
``PIDFD_INFO_EXIT``, filled in once the parent has reaped it); before the reaping, a zombie's
status is in ``/proc/<pid>/stat``. Where neither answers, the process is only known to be gone.

``ProcessWatch`` holds a pidfd for each process of an engine instance from the moment it shows
up, so that when the instance fails it can say which of its processes died and how.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil

# include/uapi/linux/pidfd.h: struct pidfd_info (64 bytes in its first version)
PIDFD_INFO_EXIT = 1 << 3
PIDFD_INFO_SIZE = 64
PIDFD_GET_INFO = (3 << 30) | (PIDFD_INFO_SIZE << 16) | (0xFF << 8) | 11  # _IOWR(0xFF, 11, struct pidfd_info)
EXIT_CODE_OFFSET = 60  # after mask, cgroupid (u64) and eleven u32 ids
STAT_EXIT_CODE_FIELD = 52  # /proc/<pid>/stat, counted from 1 (Linux 3.5+)


def describe_returncode(returncode: int | None) -> str:
    """``subprocess``'s convention (a negative code is the signal that killed it), in words."""
    if returncode is None:
        return "exited (how is unknown)"
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"was killed by signal {name} ({number})"
    return f"exited with code {returncode}"


def _returncode(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _from_pidfd(pidfd: int) -> int | None:
    info = bytearray(PIDFD_INFO_SIZE)
    struct.pack_into("Q", info, 0, PIDFD_INFO_EXIT)
    try:
        fcntl.ioctl(pidfd, PIDFD_GET_INFO, info, True)
    except OSError:  # a kernel before 6.15, or not a pidfd
        return None
    (mask,) = struct.unpack_from("Q", info, 0)
    if not mask & PIDFD_INFO_EXIT:
        return None  # still running, or not reaped yet
    (status,) = struct.unpack_from("i", info, EXIT_CODE_OFFSET)
    return _returncode(status)


def _from_zombie(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as file:
            stat = file.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command may hold spaces and parentheses
    if not fields or fields[0] != "Z" or len(fields) < STAT_EXIT_CODE_FIELD - 2:
        return None
    return _returncode(int(fields[STAT_EXIT_CODE_FIELD - 3]))


def exit_returncode(pidfd: int | None, pid: int) -> int | None:
    """How a process that has ended ended (negative: the signal), or None if not known."""
    if pidfd is not None and (code := _from_pidfd(pidfd)) is not None:
        return code
    return _from_zombie(pid)


def _title(process: psutil.Process) -> str:
    """What the process calls itself: vLLM titles its own (``VLLM::Worker``)."""
    try:
        words = " ".join(process.cmdline()).split()
        return " ".join(words[:3]) if words else process.name()
    except psutil.Error:
        return ""


@dataclass
class Watched:
    process: psutil.Process
    title: str
    depth: int  # 1: a child of this process, 2: a grandchild...
    pidfd: int | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def ended(self) -> tuple[bool, int | None]:
        """(whether it has ended, its return code where known)."""
        code = exit_returncode(self.pidfd, self.pid)
        if code is not None:
            return True, code
        try:
            alive = self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            alive = False
        return not alive, None


@dataclass(frozen=True)
class Death:
    title: str
    pid: int
    depth: int
    returncode: int | None

    @property
    def signalled(self) -> bool:
        return self.returncode is not None and self.returncode < 0

    def __str__(self) -> str:
        return f"{self.title or 'process'} (pid {self.pid}) {describe_returncode(self.returncode)}"


class ProcessWatch:
    """The processes of one engine instance, each with a pidfd taken as soon as it is seen.

    ``scan`` adds the descendants of this process that ``belongs`` accepts and that are new;
    call it while the instance starts (its processes appear one after the other), then keep
    the watch for the instance's life and ``close`` it after the instance has stopped.
    """

    def __init__(self, belongs: Callable[[psutil.Process], bool]) -> None:
        self._belongs = belongs
        self._ignored: set[int] = set()
        self.watched: dict[int, Watched] = {}

    def ignore(self, pids: Iterable[int]) -> None:
        """Processes that existed before the instance started: never its own."""
        self._ignored.update(pids)

    def scan(self) -> list[Watched]:
        """Watch the new processes; return them."""
        me = psutil.Process()
        found = []
        for process in me.children(recursive=True):
            pid = process.pid
            if pid in self._ignored:
                continue
            if pid in self.watched:
                self.watched[pid].title = _title(process) or self.watched[pid].title  # vLLM renames its own
                continue
            with contextlib.suppress(psutil.Error):
                if not self._belongs(process):
                    self._ignored.add(pid)
                    continue
                pidfd = None
                with contextlib.suppress(OSError):
                    pidfd = os.pidfd_open(pid)
                depth = sum(1 for _ in _ancestors_below(process, me.pid))
                watched = Watched(process, _title(process), depth, pidfd)
                self.watched[pid] = watched
                found.append(watched)
        return found

    def processes(self) -> list[psutil.Process]:
        return [w.process for w in self.watched.values()]

    def deaths(self) -> list[Death]:
        """The processes that ended badly, the likeliest cause first: those killed by a signal,
        the deepest first (a child's death takes its parent down, rarely the other way), then
        those that exited with an error code. Empty while all of them run."""
        deaths = []
        for watched in self.watched.values():
            ended, code = watched.ended()
            if ended and code != 0:
                deaths.append(Death(watched.title, watched.pid, watched.depth, code))
        return sorted(deaths, key=lambda d: (not d.signalled, -d.depth))

    def close(self) -> None:
        for watched in self.watched.values():
            if watched.pidfd is not None:
                os.close(watched.pidfd)
                watched.pidfd = None


def _ancestors_below(process: psutil.Process, top: int) -> Iterable[int]:
    """The pids from ``process`` up to (not including) ``top``."""
    current: psutil.Process | None = process
    while current is not None and current.pid != top:
        yield current.pid
        current = current.parent()
