"""kill -9 of each part of the stack while streams run: no stream hangs, nothing is left
running, and once the part is started again (as compose or Kubernetes would) the stack
serves again; the time that takes is reported. Also a model switch under traffic."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from tests.e2e.conftest import Stack
from tests.faults.conftest import DEMO, ENGINES
from tests.helpers import ServiceProcess, wait_until

STREAMS = 8


@dataclass
class Stream:
    """One streamed completion read in a thread, keeping how it ended."""

    url: str
    body: dict[str, object]
    started: threading.Event = field(default_factory=threading.Event)
    ending: str = ""  # "done", "error event", or the exception that ended it
    thread: threading.Thread | None = None

    def start(self) -> Stream:
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self) -> None:
        try:
            with httpx.stream("POST", f"{self.url}/v1/completions", json=self.body, timeout=120) as answer:
                for line in answer.iter_lines():
                    if line.startswith("data: "):
                        self.started.set()
                        if line == "data: [DONE]":
                            self.ending = self.ending or "done"
                        elif "error" in json.loads(line[6:]):
                            self.ending = "error event"
        except httpx.HTTPError as exc:
            self.ending = type(exc).__name__
        finally:
            self.started.set()


def streams(stack: Stack, engine: str, n: int = STREAMS, tokens: int = 900) -> list[Stream]:
    body = {"model": DEMO, "engine": engine, "prompt": "hi", "max_tokens": tokens, "ignore_eos": True, "stream": True}
    running = [Stream(stack.url, body).start() for _ in range(n)]
    for stream in running:
        assert stream.started.wait(120), "a stream never started"
    return running


def ended(running: list[Stream]) -> list[str]:
    for stream in running:
        assert stream.thread is not None
        stream.thread.join(180)
        assert not stream.thread.is_alive(), "a stream hung after the kill"
    return [s.ending for s in running]


def serves(stack: Stack, engine: str) -> bool:
    body = {"model": DEMO, "engine": engine, "prompt": "hi", "max_tokens": 2}
    try:
        return httpx.post(f"{stack.url}/v1/completions", json=body, timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


def part_of(stack: Stack, name: str) -> ServiceProcess:
    if name == "router":
        return stack.router
    if name == "gateway":
        return stack.gateway
    return stack.engines[name.removeprefix("engine_")]


PARTS = [f"engine_{e}" for e in ENGINES] + ["router", "gateway"]


@pytest.mark.parametrize("part", PARTS)
def test_kill_9_under_streams(fault_stack: Stack, part: str, report: list[str]) -> None:
    engine = part.removeprefix("engine_") if part.startswith("engine_") else ENGINES[0]
    running = streams(fault_stack, engine, tokens=3000 if engine == "vllm" else 900)
    service = part_of(fault_stack, part)
    left = service.kill()
    endings = ended(running)
    _, alive = psutil.wait_procs(left, timeout=60)
    assert alive == [], f"{part} left {alive} running"
    restarted = time.monotonic()
    service.start(timeout=300)
    wait_until(lambda: serves(fault_stack, engine), 600, f"the stack to serve after {part} came back")
    recovery = time.monotonic() - restarted
    summary = ", ".join(f"{endings.count(e)} {e}" for e in sorted(set(endings)))
    loads = " (includes loading the model again on demand)" if part.startswith("engine_") else ""
    report.append(
        f"kill -9 {part} under {STREAMS} streams: ended {summary}; serving {recovery:.1f}s after restart{loads}"
    )


def test_a_model_switch_under_traffic_aborts_streams_cleanly(fault_stack: Stack, report: list[str]) -> None:
    """More streams than llama-server slots, some queued; an explicit load of another model
    replaces the busy one at once: every stream ends with an error event (never OpenAI-foreign
    finish_reason 'abort'), and the old llama-server stops on SIGTERM, not after its grace."""
    running = streams(fault_stack, "llamacpp", n=12, tokens=1000)
    started = time.monotonic()
    body = {"model_path": f"{DEMO}.gguf", "engine": "llamacpp", "served_model_name": "switched"}
    assert httpx.post(f"{fault_stack.url}/v1/models/load", json=body, timeout=600).status_code == 200
    took = time.monotonic() - started
    endings = ended(running)
    assert set(endings) <= {"error event", "done"} and "error event" in endings
    assert "ignored SIGTERM" not in fault_stack.engines["llamacpp"].log_tail(400)
    errors = endings.count("error event")
    report.append(f"model switch under 12 llama.cpp streams: load returned in {took:.2f}s, {errors} ended in error")
    restore = httpx.post(f"{fault_stack.url}/v1/models/unload", json={"model": "switched"}, timeout=120)
    assert restore.status_code == 200
