"""``switchyard up``'s supervisor: a part that dies once the stack is up comes back; one that
keeps dying, or dies while the stack starts, stops everything."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from switchyard.supervisor import Part, PartFailed, Supervisor
from tests.helpers import until

# Lives until killed the first time it runs; every later run exits at once with code 3.
FIRST_LIVES = (
    "import pathlib, sys, time\n"
    "marker = pathlib.Path(sys.argv[1])\n"
    "if marker.exists():\n"
    "    sys.exit(3)\n"
    "marker.touch()\n"
    "time.sleep(3600)\n"
)
SLEEPS = "import time; time.sleep(3600)"


async def always_ready() -> bool:
    return True


def kill(part: Part) -> int:
    assert part.proc is not None
    os.killpg(part.proc.pid, signal.SIGKILL)
    return part.proc.pid


async def test_a_part_that_dies_once_the_stack_is_up_is_restarted() -> None:
    part = Part("sleeper", [sys.executable, "-c", SLEEPS], always_ready)
    supervisor = Supervisor([part], restart_backoff_s=(0.01,))
    try:
        await supervisor.start_all()
        first = kill(part)
        await until(lambda: supervisor.restarts.get("sleeper") == 1, "the restart", 30)
        assert part.proc is not None and part.proc.pid != first and part.proc.returncode is None
        assert not supervisor.stopping.is_set() and supervisor.failure is None
    finally:
        await supervisor.stop_all()
    assert part.proc.returncode is not None


async def test_a_part_that_keeps_dying_stops_everything_after_the_back_off_steps(tmp_path: Path) -> None:
    flaky = Part("flaky", [sys.executable, "-c", FIRST_LIVES, str(tmp_path / "ran")], always_ready)
    other = Part("other", [sys.executable, "-c", SLEEPS], always_ready)
    supervisor = Supervisor([other, flaky], restart_backoff_s=(0.01, 0.01))
    try:
        await supervisor.start_all()
        await until((tmp_path / "ran").exists, "the first run to start", 30)
        kill(flaky)
        async with asyncio.timeout(30):
            await supervisor.stopping.wait()
    finally:
        await supervisor.stop_all()
    assert supervisor.failure == "flaky exited with code 3 (3 times in 300s)"
    assert other.proc is not None and other.proc.returncode is not None  # stopped with the rest


async def test_a_part_that_dies_while_the_stack_starts_stops_it_at_once(tmp_path: Path) -> None:
    async def never_ready() -> bool:
        return False

    part = Part("broken", [sys.executable, "-c", "import sys; sys.exit(3)"], never_ready)
    supervisor = Supervisor([part])
    try:
        with pytest.raises(PartFailed, match="broken exited with code 3"):
            await supervisor.start_all()
    finally:
        await supervisor.stop_all()
    assert supervisor.restarts == {}
