"""The seed system's curl examples, verbatim in shape, against the gateway."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import E2E_ENGINES, SERVED, Stack
from tests.helpers import wait_until

STATES = {"idle", "loading", "loaded", "error"}


def test_health(stack: Stack) -> None:
    answer = httpx.get(f"{stack.url}/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_status_has_the_seed_shape(stack: Stack) -> None:
    body = stack.status()
    assert set(body) == {"vllm", "llamacpp"}
    for engine in ("vllm", "llamacpp"):
        value = body[engine]
        assert isinstance(value, dict) and value["status"] in STATES and "model" in value
    llamacpp = body["llamacpp"]
    assert isinstance(llamacpp, dict) and isinstance(llamacpp["process_alive"], bool)
    for loaded in E2E_ENGINES:
        value = body[loaded.name]
        assert isinstance(value, dict) and value["status"] == "loaded" and value["model"] == SERVED[loaded.name]


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_seed_completion(stack: Stack, engine: str) -> None:
    body = {"prompt": "こんにちは", "engine": engine, "max_tokens": 16, "temperature": 0.7, "top_p": 0.95}
    answer = httpx.post(f"{stack.url}/v1/completions", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["choices"][0]["text"] and result["usage"]["completion_tokens"] <= 16
    assert result["engine"] == engine


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_seed_streaming_completion(stack: Stack, engine: str) -> None:
    body = {"prompt": "こんにちは", "engine": engine, "max_tokens": 8, "stream": True}
    with httpx.stream("POST", f"{stack.url}/v1/completions", json=body, timeout=120) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in answer.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")


def test_seed_load_blocks_until_loaded_and_switches(stack: Stack) -> None:
    """Loading a new model on an engine replaces the old one; the call returns when done."""
    body = {"model_path": "switchyard-demo.gguf", "engine": "llamacpp", "served_model_name": "switched"}
    answer = httpx.post(f"{stack.url}/v1/models/load", json=body, timeout=600)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "success" and answer.json()["model"] == "switched"
    assert stack.engine_status("llamacpp")["model"] == "switched"
    restore = {"model_path": "switchyard-demo.gguf", "engine": "llamacpp", "served_model_name": SERVED["llamacpp"]}
    assert httpx.post(f"{stack.url}/v1/models/load", json=restore, timeout=600).status_code == 200


def test_seed_vllm_load_with_its_defaults(stack: Stack) -> None:
    """The seed's vLLM load body: only model_path and engine, the defaults apply (bfloat16)."""
    if not any(e.name == "vllm" for e in E2E_ENGINES):
        pytest.skip("vLLM is not installed")
    body = {"model_path": "switchyard-demo", "engine": "vllm"}
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(httpx.post, f"{stack.url}/v1/models/load", json=body, timeout=600)
        # while the call blocks, /v1/status shows the load and its progress
        wait_until(lambda: stack.engine_status("vllm")["status"] == "loading", 120, "the load to show")
        progress = stack.engine_status("vllm")["progress"]
        assert isinstance(progress, float) and 0.0 <= progress <= 1.0
        answer = loading.result()
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "success"
    assert stack.engine_status("vllm")["status"] == "loaded"
    restore = {
        "model_path": "switchyard-demo",
        "engine": "vllm",
        "served_model_name": SERVED["vllm"],
        "dtype": "float32",
        "gpu_memory_utilization": 0.9,
        "max_model_len": 4096,
    }
    assert httpx.post(f"{stack.url}/v1/models/load", json=restore, timeout=600).status_code == 200


def test_openapi_docs_are_served(stack: Stack) -> None:
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    assert {"/v1/completions", "/v1/chat/completions", "/v1/status", "/v1/models/load"} <= set(spec["paths"])
    assert httpx.get(f"{stack.url}/docs").status_code == 200
