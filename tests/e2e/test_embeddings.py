"""/v1/embeddings on both real engines, through the openai SDK: the same weights loaded for
embeddings on llama.cpp and vLLM, pooled the same way, give the same vectors."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conformance.engines import VLLM_AVAILABLE
from tests.e2e.conftest import E2E_ENGINES, Stack, load_body, start_stack, stop_stack
from tests.helpers import openai_client, until

NAMES = {e.name: f"embed-{e.name}" for e in E2E_ENGINES}
TEXTS = ["こんにちは、世界", "The weather in Paris is sunny.", "東京の天気", "a", "switchyard " * 40]
AGREEMENT = 0.999  # cosine similarity between the engines' vectors of one input, at least


@pytest.fixture(scope="module")
def embed_stack(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack with the demo model loaded for embeddings (mean pooling) on each engine."""
    stack = start_stack(model_root, tmp_path_factory.mktemp("embed"))
    try:
        for engine in E2E_ENGINES:
            body = {**load_body(engine), "served_model_name": NAMES[engine.name], "task": "embed", "pooling": "mean"}
            answer = httpx.post(f"{stack.url}/v1/models/load", json=body, timeout=600)
            assert answer.status_code == 200, answer.text
        yield stack
    finally:
        stop_stack(stack)


def client(stack: Stack) -> openai.OpenAI:
    return openai_client(f"{stack.url}/v1", 300)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_embeddings_of_texts_and_tokens_float_and_base64(embed_stack: Stack, engine: str) -> None:
    sdk = client(embed_stack)
    floats = sdk.embeddings.create(model=NAMES[engine], input=TEXTS, encoding_format="float")
    assert [d.index for d in floats.data] == list(range(len(TEXTS)))
    assert floats.model == NAMES[engine] and floats.usage.prompt_tokens > len(TEXTS)
    for item in floats.data:
        assert len(item.embedding) == 128  # the demo model's hidden size
        assert math.isclose(sum(x * x for x in item.embedding), 1.0, rel_tol=1e-4)  # L2-normalised
    packed = sdk.embeddings.create(model=NAMES[engine], input=TEXTS)  # the SDK asks for base64 and decodes it
    for a, b in zip(floats.data, packed.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
    ids = httpx.post(f"{embed_stack.url}/tokenize", json={"model": NAMES[engine], "prompt": TEXTS[0]}).json()
    by_tokens = sdk.embeddings.create(model=NAMES[engine], input=[ids["tokens"]], encoding_format="float")
    assert cosine(by_tokens.data[0].embedding, floats.data[0].embedding) > 0.99999


@pytest.mark.skipif(not VLLM_AVAILABLE, reason="needs both engines")
def test_both_engines_embed_alike(embed_stack: Stack) -> None:
    """Same weights, same pooling, same normalisation: the same vectors on both engines."""
    sdk = client(embed_stack)
    vectors = {
        engine: [d.embedding for d in sdk.embeddings.create(model=name, input=TEXTS, encoding_format="float").data]
        for engine, name in NAMES.items()
    }
    agreement = [cosine(a, b) for a, b in zip(vectors["llamacpp"], vectors["vllm"], strict=True)]
    print(f"\nembedding agreement llama.cpp vs vLLM: cosine min {min(agreement):.9f} over {len(agreement)} inputs")
    assert min(agreement) >= AGREEMENT, agreement
    different = cosine(vectors["vllm"][0], vectors["vllm"][1])
    assert different < min(agreement)  # the agreement is not that of any two vectors


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_embedding_refusals(embed_stack: Stack, engine: str) -> None:
    sdk = client(embed_stack)
    with pytest.raises(openai.BadRequestError) as dimensions:
        sdk.embeddings.create(model=NAMES[engine], input="x", dimensions=8)
    assert dimensions.value.body["param"] == "dimensions"  # type: ignore[index]
    with pytest.raises(openai.ConflictError, match="loaded for embed"):
        sdk.completions.create(model=NAMES[engine], prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        sdk.embeddings.create(model=NAMES[engine], input=[[10**6]])  # outside the vocabulary
    many = sdk.embeddings.create(model=NAMES[engine], input=[f"text {i}" for i in range(64)], encoding_format="float")
    assert len(many.data) == 64


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
async def test_a_client_that_leaves_a_large_embedding_frees_the_engine(embed_stack: Stack, engine: str) -> None:
    """The gateway races an embedding against the client's disconnect (as a whole answer): the
    call is cancelled and the engine service's request ends, instead of computing for nobody."""

    def in_flight() -> int:
        models = embed_stack.engine_status(engine)["models"]
        assert isinstance(models, list)
        return sum(int(m["in_flight"]) for m in models)

    def left() -> float:
        metrics = httpx.get(f"{embed_stack.url}/metrics", timeout=30).text
        line = 'switchyard_gateway_requests_total{route="/v1/embeddings",status="499"}'
        return sum(float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line))

    before = left()
    body = {"model": NAMES[engine], "input": ["switchyard " * 80] * 1000}
    async with httpx.AsyncClient(base_url=embed_stack.url, timeout=600) as http:
        request = asyncio.create_task(http.post("/v1/embeddings", json=body))
        await until(lambda: in_flight() > 0 or request.done(), "the embedding to reach the engine", 120)
        assert not request.done(), "the embedding finished before the client could leave: make it larger"
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
    await until(lambda: in_flight() == 0, "the engine service to drop the request", 60)
    await until(lambda: left() == before + 1, "the gateway to count the request as left (499), not answered", 60)
