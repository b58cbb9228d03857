"""Models by name through the gateway, as a client sees them: the catalogue in /v1/models and
/v1/models/{id}, loading on demand from the ``model`` field alone (the openai SDK), a stream
kept alive while its model loads, aliases, unloading one model, /v1/status listing every model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import SECOND
from tests.e2e.conftest import E2E_ENGINES, Stack, start_stack, stop_stack
from tests.helpers import openai_client

ENGINE_NAMES = [e.name for e in E2E_ENGINES]
ENGINE_ARGS = {
    "llamacpp": ["--max-models", "2"],
    "vllm": ["--max-models", "2", "--default-dtype", "float32", "--cpu-kv-cache-bytes", str(96 * 1024**2)],
}
# The models file (switchyard/engine/presets.py): one preset per engine, over the second model.
PRESETS = f"""
models:
  second-short:
    engine: llamacpp
    source: {SECOND}.gguf
    aliases: [short-b]
    keep_alive_s: 600
    options: {{ctx_size: 1024}}
  second-256:
    engine: vllm
    source: {SECOND}
    options: {{max_model_len: 256, kv_cache_memory_bytes: {64 * 1024**2}}}
"""


@pytest.fixture(scope="module")
def catalogue_stack(two_model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack with nothing loaded, two models under its root and a preset of the second per
    engine, SSE keep-alives every 0.1 s."""
    logs = tmp_path_factory.mktemp("catalogue")
    (logs / "models.yaml").write_text(PRESETS)
    presets = ["--models-file", str(logs / "models.yaml")]
    stack = start_stack(
        two_model_root,
        logs,
        gateway_args=["--stream-keepalive-s", "0.1"],
        engine_args={engine: [*args, *presets] for engine, args in ENGINE_ARGS.items()},
    )
    yield stack
    stop_stack(stack)


def client(stack: Stack) -> openai.OpenAI:
    return openai_client(f"{stack.url}/v1", 600)


def listed(stack: Stack) -> dict[tuple[str, str], dict[str, object]]:
    """(id, engine) -> that engine's part of the id's one entry."""
    data = httpx.get(f"{stack.url}/v1/models", timeout=30).json()["data"]
    assert len({entry["id"] for entry in data}) == len(data)  # each id once
    return {(entry["id"], each["engine"]): {**entry, **each} for entry in data for each in entry["engines"]}


def test_the_catalogue_lists_what_the_roots_hold_as_available(catalogue_stack: Stack) -> None:
    entries = listed(catalogue_stack)
    for engine in ENGINE_NAMES:
        assert entries[(SECOND, engine)]["state"] == "available"
    ids = {model.id for model in client(catalogue_stack).models.list()}  # the SDK parses it
    assert SECOND in ids
    retrieved = client(catalogue_stack).models.retrieve(SECOND)
    assert retrieved.id == SECOND
    with pytest.raises(openai.NotFoundError):
        client(catalogue_stack).models.retrieve("no-such-model")


def test_a_model_loadable_by_both_engines_goes_by_the_engine_order(catalogue_stack: Stack) -> None:
    if len(ENGINE_NAMES) < 2:
        pytest.skip("needs both engines")
    answer = client(catalogue_stack).completions.create(model=SECOND, prompt="hi", max_tokens=2)
    assert answer.model_extra is not None and answer.model_extra["engine"] == "llamacpp"  # first in the default order


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_a_request_loads_its_model_on_demand(catalogue_stack: Stack, engine: str) -> None:
    answer = client(catalogue_stack).completions.create(
        model=SECOND, prompt="The fox", max_tokens=8, temperature=0, extra_body={"engine": engine, "ignore_eos": True}
    )
    assert answer.model == SECOND and answer.usage is not None and answer.usage.completion_tokens == 8
    assert listed(catalogue_stack)[(SECOND, engine)]["state"] == "loaded"
    models = catalogue_stack.engine_status(engine)["models"]
    assert isinstance(models, list) and [m["model"] for m in models] == [SECOND]


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_a_stream_is_kept_alive_while_its_model_loads(catalogue_stack: Stack, engine: str) -> None:
    body = {
        "model": "switchyard-demo",
        "engine": engine,
        "prompt": "The fox",
        "max_tokens": 4,
        "stream": True,
        "temperature": 0,
    }
    with httpx.stream("POST", f"{catalogue_stack.url}/v1/completions", json=body, timeout=600) as answer:
        assert answer.status_code == 200
        lines = [line for line in answer.iter_lines() if line]
    comments = [line for line in lines if line.startswith(":")]
    data = [line for line in lines if line.startswith("data: ")]
    assert comments, "no keep-alive comment while the model loaded"
    assert data[-1] == "data: [DONE]" and json.loads(data[0][6:])["choices"][0]["text"] is not None
    assert lines.index(comments[-1]) < lines.index(data[0])  # comments only before the output


def test_aliases_and_unloading_one_model(catalogue_stack: Stack) -> None:
    engine = ENGINE_NAMES[0]
    model_path = "switchyard-demo.gguf" if engine == "llamacpp" else "switchyard-demo"
    body = {"model_path": model_path, "engine": engine, "served_model_name": "aliased", "aliases": ["gpt-4o-mini"]}
    if engine == "vllm":
        body["dtype"] = "float32"
    assert httpx.post(f"{catalogue_stack.url}/v1/models/load", json=body, timeout=600).status_code == 200
    entries = listed(catalogue_stack)
    assert entries[("gpt-4o-mini", engine)]["alias_of"] == "aliased"
    chat = client(catalogue_stack).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert chat.model == "aliased"
    gone = httpx.post(f"{catalogue_stack.url}/v1/models/unload", json={"model": "gpt-4o-mini"}, timeout=120)
    assert gone.status_code == 200, gone.text
    assert ("aliased", engine) not in listed(catalogue_stack)
    again = httpx.post(f"{catalogue_stack.url}/v1/models/unload", json={"model": "gpt-4o-mini"}, timeout=120)
    assert again.status_code == 404 and again.json()["error"]["code"] == 404
    neither = httpx.post(f"{catalogue_stack.url}/v1/models/unload", json={}, timeout=30)
    assert neither.status_code == 400 and neither.json()["error"]["param"] == "engine"


def test_presets_are_listed_loaded_on_demand_with_their_options_and_by_name(catalogue_stack: Stack) -> None:
    """Last here: it loads the presets, evicting what the tests above loaded."""
    entries = listed(catalogue_stack)
    assert entries[("second-short", "llamacpp")]["state"] == "available"
    assert entries[("second-256", "vllm")]["state"] == "available"
    for name, engine, context in (("short-b", "llamacpp", 1024), ("second-256", "vllm", 256)):
        answer = client(catalogue_stack).completions.create(model=name, prompt="Hi", max_tokens=2)
        assert answer.usage is not None and answer.usage.completion_tokens == 2
        status = httpx.get(f"{catalogue_stack.url}/v1/status", timeout=30).json()[engine]
        loaded = next(m for m in status["models"] if name in (m["model"], *m["aliases"]))
        assert loaded["max_model_len"] == context, loaded
    # A load through the API naming the preset: what it sets wins, the preset fills the rest.
    body = {"model": "second-short", "keep_alive_s": 0}
    loaded_by_name = httpx.post(f"{catalogue_stack.url}/v1/models/load", json=body, timeout=600)
    assert loaded_by_name.status_code == 200, loaded_by_name.text
    assert loaded_by_name.json()["model"] == "second-short"
    status = httpx.get(f"{catalogue_stack.url}/v1/status", timeout=30).json()["llamacpp"]
    loaded = next(m for m in status["models"] if m["model"] == "second-short")
    assert (loaded["max_model_len"], loaded["aliases"], loaded["expires_at"]) == (1024, ["short-b"], None)
