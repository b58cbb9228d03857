"""One request id through the real stack: the client's X-Request-ID on the gateway's, the
router's and the engine's log lines, for each engine; and readiness on the real stack."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import E2E_ENGINES, SERVED, Stack
from tests.helpers import wait_until


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_one_request_id_in_every_services_log(stack: Stack, engine: str) -> None:
    rid = f"e2e-{uuid.uuid4().hex[:12]}"
    body = {"model": SERVED[engine], "prompt": "Hello", "max_tokens": 4, "stream": True}
    with httpx.stream(
        "POST", f"{stack.url}/v1/completions", json=body, headers={"X-Request-ID": rid}, timeout=120
    ) as answer:
        assert answer.status_code == 200 and answer.headers["x-request-id"] == rid
        assert f'"id":"cmpl-{rid}"' in answer.read().decode().replace(" ", "")
    tag = f"[{rid}]"

    def tagged(log: Path, words: str) -> bool:
        return any(tag in line and words in line for line in log.read_text(errors="replace").splitlines())

    wait_until(lambda: tagged(stack.engines[engine].log_path, "generate done"), 30, "the engine's line")
    wait_until(lambda: tagged(stack.router.log_path, "generate on"), 30, "the router's line")
    wait_until(lambda: tagged(stack.gateway.log_path, "POST /v1/completions 200"), 30, "the gateway's line")


def test_the_real_stack_is_ready_with_its_loaded_models(stack: Stack) -> None:
    """/ready on the real engines: the router answers and lists what each engine loaded."""
    answer = httpx.get(f"{stack.url}/ready", timeout=10)
    assert answer.status_code == 200
    assert {SERVED[e.name] for e in E2E_ENGINES} <= set(answer.json()["models"])
