"""One request id from the client to the engine: X-Request-ID taken (or made), returned, used
as the response id and the gRPC request id, and on the log lines of all three layers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.runtime.logs import RequestIds
from tests.fast.conftest import LLAMA, fast_stack
from tests.fast.test_stack_fast import sse_data


def client_of(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=30)


LAYERS = ("gateway.limits", "services.router.servicer", "switchyard.engine.servicer")


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIds())
    yield caplog


def ids_by_layer(caplog: pytest.LogCaptureFixture) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for record in caplog.records:
        if record.name in LAYERS:
            found.setdefault(record.name, set()).add(getattr(record, "request_id", ""))
    return found


async def test_the_clients_id_goes_through_every_layer(fake_root: Path, records: pytest.LogCaptureFixture) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, client_of(stack.url) as client:
        await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "max_tokens": 1})  # loads it
        records.clear()
        body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        answer = await client.post("/v1/chat/completions", json=body, headers={"X-Request-ID": "trace-42"})
        assert answer.status_code == 200 and answer.headers["x-request-id"] == "trace-42"
        chunks = [json.loads(d) for d in sse_data(answer.text)[:-1]]
        assert {c["id"] for c in chunks} == {"chatcmpl-trace-42"}
    assert ids_by_layer(records) == {layer: {"trace-42"} for layer in LAYERS}


async def test_choices_get_their_index_and_a_missing_id_is_made(
    fake_root: Path, records: pytest.LogCaptureFixture
) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, client_of(stack.url) as client:
        await client.post("/v1/completions", json={"model": "demo", "prompt": "x", "max_tokens": 1})
        records.clear()
        body = {"model": "demo", "prompt": "abc", "max_tokens": 2, "n": 2}
        two = await client.post("/v1/completions", json=body, headers={"X-Request-ID": "r.1:b_c-d"})
        assert two.status_code == 200 and two.json()["id"] == "cmpl-r.1:b_c-d"
        assert ids_by_layer(records)["switchyard.engine.servicer"] == {"r.1:b_c-d-0", "r.1:b_c-d-1"}
        made = await client.post("/v1/completions", json={**body, "n": 1})
        rid = made.headers["x-request-id"]
        assert len(rid) == 32 and made.json()["id"] == f"cmpl-{rid}"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "é", ""])
async def test_a_malformed_id_is_refused_in_the_api_error_format(fake_root: Path, bad: str) -> None:
    async with fast_stack(fake_root, kinds=(LLAMA,)) as stack, client_of(stack.url) as client:
        body = {"model": "demo", "prompt": "abc", "max_tokens": 2}
        answer = await client.post("/v1/completions", json=body, headers={b"X-Request-ID": bad.encode()})
        assert answer.status_code == 400
        assert "x-request-id must be" in answer.json()["error"]["message"]
        assert len(answer.headers["x-request-id"]) == 32  # a fresh one, never the client's
