"""The reaper kills what a SIGKILLed service asked it to watch."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.helpers import ROOT

# A "service": starts a reaper and a child it does not tie to itself, and has it watched.
SERVICE = """
import subprocess, sys, time
from switchyard.runtime.reaper import Reaper
reaper = Reaper.start()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
reaper.watch([child.pid])
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_killed_service_leaves_nothing_behind(tmp_path: Path) -> None:
    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, cwd=ROOT)
    assert service.stdout is not None
    with service.stdout:
        orphan = psutil.Process(int(service.stdout.readline()))
    reaper = next(p for p in psutil.Process(service.pid).children() if "reaper" in " ".join(p.cmdline()))
    service.send_signal(signal.SIGKILL)
    service.wait(10)
    _, alive = psutil.wait_procs([orphan, reaper], timeout=30)
    assert alive == []
