"""Backend choice: by engine, then by model, then by load; errors say what is missing."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from services.router.backends import BackendSpec
from services.router.picker import BackendView, EnginePolicy, choose, eligible
from switchyard.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from switchyard.v1 import common_pb2, control_pb2

VLLM, LLAMA, ANY = common_pb2.ENGINE_VLLM, common_pb2.ENGINE_LLAMACPP, common_pb2.ENGINE_UNSPECIFIED
LOADED, LOADING, IDLE = control_pb2.MODEL_STATE_LOADED, control_pb2.MODEL_STATE_LOADING, control_pb2.MODEL_STATE_IDLE
ERROR = control_pb2.MODEL_STATE_ERROR


def backend(
    address: str,
    engine: int,
    state: int = LOADED,
    model: str = "m",
    reachable: bool = True,
    aliases: tuple[str, ...] = (),
    autoload: bool = True,
    **load: int,
) -> BackendView:
    models = [control_pb2.ModelStatus(name=model, state=state, aliases=aliases)] if state != IDLE else []  # type: ignore[arg-type]
    status = control_pb2.EngineStatus(
        engine=engine,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        model=model,
        models=models,
        autoload=autoload,
        load=control_pb2.Load(**load),
    )
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
        ([backend("a", VLLM, model="x", state=ERROR)], VLLM, "x", Unavailable, "'x' is in error"),
        ([backend("a", VLLM, state=IDLE)], VLLM, "", FailedPrecondition, "no model loaded"),
        ([backend("a", LLAMA, model="x", state=ERROR)], ANY, "", Unavailable, "'x' is in error"),
    ],
)
def test_errors_name_what_is_missing(
    pool: list[BackendView], engine: int, model: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        eligible(pool, engine, model)  # type: ignore[arg-type]


def test_a_model_is_found_loaded_then_loading_then_loadable_on_demand() -> None:
    loaded = backend("loaded", LLAMA, model="x", aliases=("gpt",))
    loading = backend("loading", LLAMA, model="x", state=LOADING)
    empty = backend("empty", LLAMA, state=IDLE)
    assert [b.address for b in eligible([loaded, loading, empty], LLAMA, "gpt")] == ["loaded"]
    assert [b.address for b in eligible([loading, empty], LLAMA, "x")] == ["loading"]
    assert [b.address for b in eligible([empty], LLAMA, "x", loadable={"empty"})] == ["empty"]
    off = backend("off", LLAMA, state=IDLE, autoload=False)
    with pytest.raises(NotFound):
        eligible([off], LLAMA, "x", loadable={"off"})
    # no model named: a backend still loading is waited on
    assert [b.address for b in eligible([loading, empty], LLAMA, "")] == ["loading"]


def addresses(backends: list[BackendView]) -> list[str]:
    return [b.address for b in backends]


def test_a_model_both_engines_serve_goes_by_the_engine_order() -> None:
    pool = [backend("v", VLLM, model="x"), backend("l", LLAMA, model="x")]
    assert addresses(eligible(pool, ANY, "x")) == ["l"]  # the default order: llamacpp, then vllm
    assert addresses(eligible(pool, ANY, "x", policy=EnginePolicy((VLLM, LLAMA)))) == ["v"]
    assert addresses(eligible(pool, ANY, "")) == ["l"]  # no model named: the same order
    assert addresses(eligible(pool, VLLM, "x")) == ["v"]  # engine still overrides
    idle = [backend("v", VLLM, state=IDLE), backend("l", LLAMA, state=IDLE)]
    assert addresses(eligible(idle, ANY, "demo", loadable={"v", "l"}, policy=EnginePolicy((VLLM, LLAMA)))) == ["v"]


def test_the_best_state_comes_before_the_order() -> None:
    """A model loaded on one engine is served there, not loaded on the preferred one."""
    pool = [backend("v", VLLM, model="x"), backend("l", LLAMA, state=IDLE)]
    assert addresses(eligible(pool, ANY, "x", loadable={"l"})) == ["v"]


def test_the_preferred_engine_down_is_unavailable_unless_failover() -> None:
    down = backend("l", LLAMA, model="other", reachable=False)
    down.known = frozenset({"x"})
    pool = [backend("v", VLLM, model="x"), down]
    with pytest.raises(Unavailable, match="llamacpp engine, unreachable now"):
        eligible(pool, ANY, "x")
    assert addresses(eligible(pool, ANY, "x", policy=EnginePolicy(failover=True))) == ["v"]
    assert addresses(eligible(pool, VLLM, "x")) == ["v"]  # asked for by engine: served
    assert addresses(eligible(pool, ANY, "x", policy=EnginePolicy((VLLM, LLAMA)))) == ["v"]  # not preferred
    with pytest.raises(Unavailable, match="unreachable now"):  # held nowhere else: not "not loaded"
        eligible([down, backend("v", VLLM, model="y")], ANY, "x")


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


async def test_a_slow_status_watcher_holds_only_the_latest_per_backend() -> None:
    from services.router.servicer import LatestStatuses

    watcher = LatestStatuses()
    for i in range(10_000):
        watcher.put("a", control_pb2.EngineStatus(model=f"a{i}"))
        watcher.put("b", control_pb2.EngineStatus(model=f"b{i}"))
    assert [s.model for s in await watcher.take()] == ["a9999", "b9999"]
