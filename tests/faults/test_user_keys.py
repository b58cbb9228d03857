"""A user key may use the models that are loaded, not load, evict or switch them: loads on
demand, for generation or for embeddings, are an admin's (or granted by a setting)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SECOND
from tests.e2e.conftest import Stack
from tests.faults.conftest import DEMO
from tests.helpers import ServiceProcess

USER, ADMIN = {"Authorization": "Bearer user-key"}, {"Authorization": "Bearer admin-key"}


@pytest.fixture(scope="module")
def keyed(fault_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A second gateway over the fault stack's router, with a user key and an admin key."""
    gateway = ServiceProcess(
        "gateway",
        ["--router", fault_stack.router.address, "--api-keys", "user-key", "--admin-keys", "admin-key"],
        tmp_path_factory.mktemp("keyed") / "gateway.log",
        http=True,
    ).start()
    yield gateway
    gateway.stop()


def loaded(stack: Stack) -> dict[str, list[str]]:
    names = {}
    for engine in stack.engines:
        models = stack.engine_status(engine)["models"]
        assert isinstance(models, list)
        names[engine] = sorted(str(m["model"]) for m in models)
    return names


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"model": SECOND, "prompt": "hi", "max_tokens": 2}),
        ("/v1/chat/completions", {"model": SECOND, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}),
        ("/v1/embeddings", {"model": SECOND, "input": "hi"}),
        ("/tokenize", {"model": SECOND, "prompt": "hi"}),
    ],
)
def test_a_user_key_cannot_load_a_model_on_demand(
    fault_stack: Stack, keyed: ServiceProcess, path: str, body: dict[str, object]
) -> None:
    before = loaded(fault_stack)
    answer = httpx.post(f"{keyed.url}{path}", json=body, headers=USER, timeout=120)
    assert answer.status_code == 403, answer.text
    assert "admin key" in answer.json()["error"]["message"]
    assert loaded(fault_stack) == before  # nothing loaded, evicted or switched


def test_a_user_key_embedding_a_generative_model_does_not_reload_it(fault_stack: Stack, keyed: ServiceProcess) -> None:
    before = loaded(fault_stack)
    answer = httpx.post(f"{keyed.url}/v1/embeddings", json={"model": DEMO, "input": "hi"}, headers=USER, timeout=120)
    assert answer.status_code in (403, 409), answer.text
    assert loaded(fault_stack) == before


def test_a_user_key_uses_what_is_loaded(keyed: ServiceProcess) -> None:
    body = {"model": DEMO, "prompt": "hi", "max_tokens": 2}
    assert httpx.post(f"{keyed.url}/v1/completions", json=body, headers=USER, timeout=120).status_code == 200
