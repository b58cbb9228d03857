"""CPU time of the processes that serve the targets, per generated token.

Wall-clock throughput drifts with the machine's load; the CPU a process spends for each token
it passes on hardly does, so it is the figure to judge a hop by. A watched process is named by
its role in a running stack (found by its command line), by a pattern, or by pid:

- ``auto``: every part of a running stack that is found (gateway, router, engine services,
  llama-server children, vLLM engine cores);
- a role (``gateway``, ``router``, ``engine-llamacpp``, ``engine-vllm``, ``llama-server``,
  ``vllm-core``), or ``NAME=PATTERN`` for processes whose command line contains PATTERN;
- ``NAME=PID[+PID...]``.

The processes are fixed when the bench starts. Each run of a step reads their CPU time
(user + system) before and after; while one target runs the others' processes idle, so a
process's CPU over a run, divided by the tokens the run generated, is its cost per token for
that target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

# Roles of a switchyard stack and how their command lines read.
ROLES = {
    "gateway": "-m gateway",
    "router": "-m services.router",
    "engine-llamacpp": "-m services.engine_llamacpp",
    "engine-vllm": "-m services.engine_vllm",
    "llama-server": "llama-server",
    "vllm-core": "VLLM::EngineCore",
}


@dataclass(frozen=True)
class Watched:
    """A named group of processes whose CPU time is summed."""

    name: str
    processes: tuple[psutil.Process, ...]


def _command(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline()) or process.name()
    return ""


def _matching(pattern: str) -> tuple[psutil.Process, ...]:
    me = psutil.Process()
    return tuple(p for p in psutil.process_iter() if p.pid != me.pid and pattern in _command(p))


def resolve(spec: str) -> list[Watched]:
    """The processes ``spec`` names (see the module's docstring); ValueError when none."""
    if spec == "auto":
        found = [Watched(role, _matching(pattern)) for role, pattern in ROLES.items()]
        found = [w for w in found if w.processes]
        if not found:
            raise ValueError("--cpu-of auto: no part of a switchyard stack is running")
        return found
    name, sep, what = spec.partition("=")
    if not sep:
        if name not in ROLES:
            raise ValueError(f"--cpu-of {spec!r}: not one of auto, {', '.join(ROLES)}, NAME=PATTERN or NAME=PID")
        name, what = name, ROLES[name]
    if what.replace("+", "").isdigit():
        try:
            processes = tuple(psutil.Process(int(pid)) for pid in what.split("+"))
        except psutil.Error as error:
            raise ValueError(f"--cpu-of {spec!r}: {error}") from None
    else:
        processes = _matching(what)
    if not processes:
        raise ValueError(f"--cpu-of {spec!r}: no running process matches")
    return [Watched(name, processes)]


class CpuMeter:
    """Reads the CPU seconds of each watched group."""

    def __init__(self, watched: Sequence[Watched]) -> None:
        names = [w.name for w in watched]
        if len(set(names)) != len(names):
            raise ValueError(f"--cpu-of names must differ, got {names}")
        self.watched = list(watched)
        self._last: dict[int, float] = {}  # each process's last reading, kept once it has exited

    def sample(self) -> dict[str, float]:
        """CPU seconds so far of each group (a process that exited counts as its last reading)."""
        return {w.name: sum(self._cpu_seconds(p) for p in w.processes) for w in self.watched}

    def _cpu_seconds(self, process: psutil.Process) -> float:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            self._last[process.pid] = times.user + times.system
        return self._last.get(process.pid, 0.0)


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}
