"""A build that runs out of its time limit is stopped, its step's processes included, and fails
with a message that names the build and the limit, before any pytest timeout."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.containers.podman import BASE_IMAGE, available, ensure_base_image, run_build

pytestmark = pytest.mark.timeout(300)

SLEEP = "sleep 617"  # a step that would outlive the limit by minutes


def step_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if " ".join(process.info["cmdline"] or []) == SLEEP:
            found.append(process)
    return found


def test_a_build_past_its_limit_is_stopped_and_says_so(tmp_path: Path) -> None:
    reason = available()
    if reason:
        pytest.skip(reason)
    ensure_base_image()
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN {SLEEP}\n")
    args = ["build", "--network=host", "--no-cache", f"--file={tmp_path / 'Dockerfile'}", str(tmp_path)]
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failed:
        run_build(args, "image sleeper", tmp_path / "build.log", limit=15)
    assert time.monotonic() - start < 120
    message = str(failed.value)
    assert "building image sleeper ran out of time" in message
    assert "within its limit of 15 s" in message and "BUILD_LIMITS_S" in message
    assert f"RUN {SLEEP}" in message  # the end of the log: where it was
    assert step_processes() == [], "the step's processes outlived the build"
