"""How an engine's processes ended, in words: the cause a failed load or a dead model reports."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil

from switchyard.runtime.child_output import ChildOutput, last_error_line
from switchyard.runtime.exits import ProcessWatch, describe_returncode
from tests.helpers import wait_until


def test_return_codes_in_words() -> None:
    assert describe_returncode(-4) == "was killed by signal SIGILL (4)"
    assert describe_returncode(3) == "exited with code 3"
    assert describe_returncode(-99) == "was killed by signal signal 99 (99)"
    assert describe_returncode(None) == "exited (how is unknown)"


def test_a_watched_child_killed_by_a_signal_is_named_first() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    killed, failing = subprocess.Popen(sleeper), subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    watch = ProcessWatch(lambda process: process.pid in (killed.pid, failing.pid))
    try:
        wait_until(lambda: len(watch.scan()) == 2 or len(watch.watched) == 2, 30, "both children watched")
        assert watch.deaths() == [] or all(d.pid == failing.pid for d in watch.deaths())
        killed.send_signal(signal.SIGILL)
        killed.wait(30)
        failing.wait(30)  # reaped by us, as a parent does: the pidfd keeps the status
        wait_until(lambda: len(watch.deaths()) == 2, 30, "both deaths seen")
        deaths = watch.deaths()
        assert [(d.pid, d.returncode, d.signalled) for d in deaths] == [
            (killed.pid, -signal.SIGILL, True),
            (failing.pid, 2, False),
        ]
        assert f"(pid {killed.pid}) was killed by signal SIGILL (4)" in str(deaths[0])
    finally:
        for child in (killed, failing):
            child.kill()
            child.wait()
        watch.close()


def test_processes_that_are_not_the_instances_are_never_watched() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = ProcessWatch(lambda process: False)
        assert watch.scan() == [] and watch.processes() == []
        watch.ignore([child.pid])
        assert ProcessWatch(lambda process: True).scan()  # the same child, when it belongs
    finally:
        child.kill()
        child.wait()
    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE


def test_the_last_error_line_of_a_log() -> None:
    lines = ["INFO loading", "Traceback (most recent call last):", "RuntimeError: no kernel", "INFO shutting down"]
    assert last_error_line(lines) == "RuntimeError: no kernel"
    assert last_error_line(["all fine"]) == ""
    assert len(last_error_line(["ERROR " + "x" * 10_000])) == 2000


def test_a_childs_output_is_passed_on_and_its_error_kept() -> None:
    output = ChildOutput("test")
    with output.capturing() as release:
        child = subprocess.Popen([sys.executable, "-c", "import sys; print('ERROR: worker died', file=sys.stderr)"])
        release()
    child.wait(30)
    output.close(30)
    assert output.last_error() == "ERROR: worker died"
