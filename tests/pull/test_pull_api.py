"""Pulls as a client sees them: POST /v1/models/pull streamed and whole, the status while a pull
runs, 507 when the disk is too small, and `switchyard pull` with its progress bar."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conformance.engines import LLAMACPP
from tests.e2e.conftest import Stack
from tests.helpers import ROOT, ServiceProcess, wait_until
from tests.hub import LocalHub
from tests.pull.conftest import DEMO_REPO, GGUF_NAME, start_engine


@pytest.fixture
def pull_stack(hub: LocalHub, tmp_path: Path) -> Iterator[tuple[Stack, Path]]:
    """llama.cpp behind a router and a gateway, pulling from the local hub into an empty root."""
    root = tmp_path / "root"
    root.mkdir()
    engine = start_engine(LLAMACPP, root, tmp_path, hub)
    router = ServiceProcess("services.router", ["--backends", f"llamacpp={engine.address}"], tmp_path / "router.log")
    router.start()
    gateway = ServiceProcess("gateway", ["--router", router.address], tmp_path / "gateway.log", http=True).start()
    yield Stack({"llamacpp": engine}, router, gateway), root
    for service in (gateway, router, engine):
        service.stop()


def test_a_streamed_pull_reports_progress_and_the_status_shows_it(
    pull_stack: tuple[Stack, Path], hub: LocalHub
) -> None:
    stack, root = pull_stack
    hub.delay_per_chunk = 0.02
    seen_in_status = False
    try:
        body = {"model": f"{DEMO_REPO}:F32", "stream": True}
        events = []
        with httpx.stream("POST", f"{stack.url}/v1/models/pull", json=body, timeout=300) as answer:
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
            for line in answer.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    events.append(json.loads(line[6:]))
                    if events[-1]["state"] == "downloading" and not seen_in_status:
                        pulls = stack.engine_status("llamacpp")["pulls"]
                        seen_in_status = isinstance(pulls, list) and pulls[0]["model"] == f"{DEMO_REPO}:F32"
    finally:
        hub.delay_per_chunk = 0.0
    assert seen_in_status
    downloading = [e["bytes_done"] for e in events if e["state"] == "downloading"]
    assert len(downloading) >= 2 and downloading == sorted(downloading)
    assert events[-1]["state"] == "done" and events[-1]["name"] == f"{DEMO_REPO}:F32"
    assert events[-1]["bytes_done"] == events[-1]["bytes_total"] > 0
    assert Path(events[-1]["model_path"]) == root / DEMO_REPO / GGUF_NAME


def test_a_whole_pull_then_a_completion_by_name(pull_stack: tuple[Stack, Path]) -> None:
    stack, _ = pull_stack
    answer = httpx.post(f"{stack.url}/v1/models/pull", json={"model": f"{DEMO_REPO}:F32"}, timeout=300)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == f"{DEMO_REPO}:F32" and answer.json()["engine"] == "llamacpp"
    assert len(answer.json()["revision"]) == 40
    models = {m["id"]: m for m in httpx.get(f"{stack.url}/v1/models", timeout=30).json()["data"]}
    assert models[f"{DEMO_REPO}:F32"]["state"] == "available"
    completion = {"model": f"{DEMO_REPO}:F32", "prompt": "hi", "max_tokens": 4}
    assert httpx.post(f"{stack.url}/v1/completions", json=completion, timeout=120).status_code == 200


def test_load_by_hub_id_through_the_gateway(pull_stack: tuple[Stack, Path]) -> None:
    stack, _ = pull_stack
    body = {"model_path": f"hf:{DEMO_REPO}:F32", "engine": "llamacpp"}
    answer = httpx.post(f"{stack.url}/v1/models/load", json=body, timeout=300)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == f"{DEMO_REPO}:F32"


def test_not_enough_disk_is_507(pull_stack: tuple[Stack, Path]) -> None:
    stack, root = pull_stack
    answer = httpx.post(f"{stack.url}/v1/models/pull", json={"model": "huge/model:F32"}, timeout=300)
    assert answer.status_code == 507, answer.text
    assert (
        answer.json()["error"]["type"] == "insufficient_storage" and "GiB are free" in answer.json()["error"]["message"]
    )
    assert not (root / "huge").exists()


def test_switchyard_pull_on_the_command_line(pull_stack: tuple[Stack, Path]) -> None:
    stack, root = pull_stack
    done = subprocess.run(
        [sys.executable, "-m", "switchyard", "pull", f"{DEMO_REPO}:F32", "--router", stack.router.address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert str(root / DEMO_REPO / GGUF_NAME) in done.stdout
    assert "B/s" in done.stderr or "100%" in done.stderr  # tqdm's bar
    failed = subprocess.run(
        [sys.executable, "-m", "switchyard", "pull", "nobody/nothing:Q4_K_M", "--router", stack.router.address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "NOT_FOUND" in failed.stderr
    wait_until(lambda: stack.engine_status("llamacpp")["pulls"] == [], 30, "no pull left in the status")
