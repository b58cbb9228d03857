"""Backend choice: by engine, then by model, then by load; errors say what is missing."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from services.router.backends import BackendSpec
from services.router.picker import BackendView, choose, eligible
from switchyard.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from switchyard.v1 import common_pb2, control_pb2

VLLM, LLAMA, ANY = common_pb2.ENGINE_VLLM, common_pb2.ENGINE_LLAMACPP, common_pb2.ENGINE_UNSPECIFIED
LOADED, LOADING, IDLE = control_pb2.MODEL_STATE_LOADED, control_pb2.MODEL_STATE_LOADING, control_pb2.MODEL_STATE_IDLE


def backend(
    address: str, engine: int, state: int = LOADED, model: str = "m", reachable: bool = True, **load: int
) -> BackendView:
    status = control_pb2.EngineStatus(engine=engine, state=state, model=model, load=control_pb2.Load(**load))  # type: ignore[arg-type]
    return BackendView(address=address, engine=engine, reachable=reachable, status=status)  # type: ignore[arg-type]


def test_engine_then_model_filters() -> None:
    pool = [backend("a", VLLM, model="x"), backend("b", LLAMA, model="x"), backend("c", LLAMA, model="y")]
    assert [b.address for b in eligible(pool, LLAMA, "x")] == ["b"]
    assert [b.address for b in eligible(pool, LLAMA, "")] == ["b", "c"]
    assert [b.address for b in eligible(pool, ANY, "y")] == ["c"]


@pytest.mark.parametrize(
    ("pool", "engine", "model", "error", "words"),
    [
        ([backend("a", LLAMA)], VLLM, "", Unavailable, "no vllm backend is configured"),
        ([backend("a", VLLM, reachable=False)], VLLM, "", Unavailable, "no vllm backend is reachable"),
        ([backend("a", VLLM, model="x")], VLLM, "y", NotFound, "'y' is not loaded on any vllm backend"),
        ([backend("a", VLLM, state=LOADING)], VLLM, "", Unavailable, "loading"),
        ([backend("a", VLLM, state=IDLE)], VLLM, "", FailedPrecondition, "no model loaded"),
        ([backend("a", VLLM, model="x"), backend("b", LLAMA, model="x")], ANY, "x", InvalidArgument, "both"),
    ],
)
def test_errors_name_what_is_missing(
    pool: list[BackendView], engine: int, model: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        eligible(pool, engine, model)  # type: ignore[arg-type]


def test_power_of_two_prefers_the_less_loaded() -> None:
    busy = backend("busy", LLAMA, waiting_requests=10)
    idle = backend("idle", LLAMA)
    rng = random.Random(0)
    assert all(choose([busy, idle], rng).address == "idle" for _ in range(50))


def test_equal_load_spreads() -> None:
    pool = [backend(str(i), LLAMA) for i in range(3)]
    counts = Counter(choose(pool, random.Random(i)).address for i in range(300))
    assert set(counts) == {"0", "1", "2"} and min(counts.values()) > 50


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("llamacpp=127.0.0.1:50062", BackendSpec(LLAMA, "127.0.0.1", 50062, False)),
        ("vllm=dns:engine-vllm:50061", BackendSpec(VLLM, "engine-vllm", 50061, True)),
        ("vllm=dns:///engine-vllm.ns.svc:50061", BackendSpec(VLLM, "engine-vllm.ns.svc", 50061, True)),
    ],
)
def test_backend_specs_parse(text: str, spec: BackendSpec) -> None:
    assert BackendSpec.parse(text) == spec


@pytest.mark.parametrize("text", ["tgi=host:1", "llamacpp", "vllm=host", "vllm=host:port"])
def test_bad_backend_specs(text: str) -> None:
    with pytest.raises(InvalidArgument):
        BackendSpec.parse(text)
