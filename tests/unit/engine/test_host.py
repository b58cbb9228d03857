"""The model host on an in-memory engine: slots, loads, on-demand loading, eviction,
keep-alive, aliases, failures and restarts. The same behaviours run on the real engines in
tests/models/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchyard.engine.host import ModelHost
from switchyard.engine.params import GenerationParams
from switchyard.errors import (
    Conflict,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from switchyard.runtime.settings import EngineSettings
from switchyard.v1 import common_pb2
from switchyard.v1 import control_pb2 as pb
from tests.fake_engine import FakeAdapter
from tests.helpers import until

LOADED, LOADING, ERROR, IDLE = pb.MODEL_STATE_LOADED, pb.MODEL_STATE_LOADING, pb.MODEL_STATE_ERROR, pb.MODEL_STATE_IDLE


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.fake").write_text("weights")
    (tmp_path / "broken.fake").write_text("fail")
    (tmp_path / "refused.fake").write_text("refuse")
    return tmp_path


@pytest.fixture
async def host(root: Path, request: pytest.FixtureRequest) -> AsyncIterator[ModelHost]:
    options: dict[str, Any] = getattr(request, "param", {})
    settings = EngineSettings(model_roots=[root], status_poll_s=0.01, restart_backoff_s=0.0, **options)
    made = ModelHost(FakeAdapter(), settings)
    made.start()
    yield made
    await made.close()


def adapter_of(host: ModelHost) -> FakeAdapter:
    assert isinstance(host.adapter, FakeAdapter)
    return host.adapter


def load(name: str, **kwargs: Any) -> pb.LoadModelRequest:
    return pb.LoadModelRequest(engine=common_pb2.ENGINE_LLAMACPP, model_path=f"{name}.fake", **kwargs)


async def explicit_load(host: ModelHost, name: str, **kwargs: Any) -> None:
    task = host.begin_load(load(name, **kwargs)).task
    assert task is not None
    await task


async def generate(host: ModelHost, model: str, prompt: str = "hello") -> str:
    async with host.request(model) as (_, running, _):
        params = GenerationParams(request_id="r", prompt=prompt)
        return "".join([r.delta.text async for r in running.generate(params)])


def states(host: ModelHost) -> dict[str, int]:
    return {m.name: m.state for m in host.board.status.models}


async def test_a_load_serves_and_the_status_lists_it(host: ModelHost) -> None:
    await explicit_load(host, "a", aliases=["gpt-4o-mini"])
    status = host.board.status
    assert status.state == LOADED and status.model == "a" and status.process_alive
    assert [(m.name, list(m.aliases), m.state) for m in status.models] == [("a", ["gpt-4o-mini"], LOADED)]
    assert await generate(host, "") == "hello"  # no name: the engine's model
    assert await generate(host, "gpt-4o-mini") == "hello"  # an alias
    catalogue = {e.name: e for e in await host.catalogue.entries(host.slots())}
    assert catalogue["a"].loaded and catalogue["a"].state == LOADED
    assert list(catalogue["a"].served_names) == ["a", "gpt-4o-mini"]
    assert catalogue["b"].state == IDLE and not catalogue["b"].loaded


async def test_a_failed_load_ends_in_error_with_its_cause_and_lists_nothing_loaded(host: ModelHost) -> None:
    with pytest.raises(Internal, match="RuntimeError: the weights are rotten"):
        await explicit_load(host, "broken")
    status = host.board.status
    assert status.state == ERROR and "rotten" in status.error and not status.process_alive
    assert not any(e.loaded for e in await host.catalogue.entries(host.slots()))
    assert adapter_of(host).running == []  # what was launched was stopped again
    with pytest.raises(FailedPrecondition, match="refused"):
        await explicit_load(host, "refused")
    await explicit_load(host, "a")  # a later load clears the failed slots
    assert states(host) == {"a": LOADED}


async def test_a_second_explicit_load_while_one_runs_is_a_conflict(host: ModelHost) -> None:
    adapter_of(host).gate.clear()
    first = host.begin_load(load("a")).task
    assert first is not None
    with pytest.raises(Conflict, match="already running"):
        host.begin_load(load("b"))
    adapter_of(host).gate.set()
    await first


@pytest.mark.parametrize("host", [{"max_models": 2}], indirect=True)
async def test_on_demand_loads_and_evicts_the_least_recently_used_idle_model(host: ModelHost) -> None:
    assert await generate(host, "a") == "hello"
    assert await generate(host, "b") == "hello"
    assert await generate(host, "a") == "hello"  # now b is the least recently used
    assert await generate(host, "c") == "hello"
    assert states(host) == {"a": LOADED, "c": LOADED}
    assert adapter_of(host).launches == ["a", "b", "c"]


@pytest.mark.parametrize("host", [{"max_models": 1, "evict_wait_s": 0.2}], indirect=True)
async def test_on_demand_never_evicts_a_busy_model_and_says_so(host: ModelHost) -> None:
    async with host.request("a"):
        with pytest.raises(ResourceExhausted, match="busy"):
            async with host.request("b"):
                pass
    assert states(host) == {"a": LOADED}


async def test_an_explicit_load_switches_even_a_busy_model(host: ModelHost) -> None:
    await explicit_load(host, "a")
    async with host.request("a") as (_, running, _):
        await explicit_load(host, "b")
        params = GenerationParams(request_id="r", prompt="hello")
        finished = [r async for r in running.generate(params)][-1].finished
        assert finished.reason == 3  # ABORTED: the model was switched under it
    assert states(host) == {"b": LOADED}


async def test_requests_during_a_load_wait_for_it_and_share_one_load(host: ModelHost) -> None:
    adapter_of(host).gate.clear()
    requests = [asyncio.ensure_future(generate(host, "b", f"r{i}")) for i in range(8)]
    await asyncio.sleep(0)
    assert states(host) in ({}, {"b": LOADING})
    adapter_of(host).gate.set()
    assert await asyncio.gather(*requests) == [f"r{i}" for i in range(8)]
    assert adapter_of(host).launches == ["b"]


async def test_an_unknown_model_is_not_loaded_and_autoload_off_says_so(host: ModelHost, root: Path) -> None:
    with pytest.raises(FailedPrecondition, match="'zzz' is not loaded"):
        await generate(host, "zzz")
    host.settings.autoload = False
    with pytest.raises(FailedPrecondition, match="autoload is off"):
        await generate(host, "a")


@pytest.mark.parametrize("host", [{"keep_alive_s": 0.05}], indirect=True)
async def test_keep_alive_unloads_an_idle_model_but_not_a_busy_one(host: ModelHost) -> None:
    await explicit_load(host, "a", keep_alive_s=0.0)  # 0: this one never expires
    assert host.board.status.models[0].keep_alive_s == 0.0
    await host.unload("a")
    async with host.request("b"):  # on demand, the engine's default keep-alive
        await host.refresh()
        assert not host.board.status.models[0].HasField("expires_at")  # busy: no expiry
        await asyncio.sleep(0.2)  # let time pass well beyond the keep-alive, while in use
        assert states(host) == {"b": LOADED}
    await host.refresh()
    assert host.board.status.models[0].HasField("expires_at")
    await host.board.wait_for(timeout=10, state=IDLE)
    assert adapter_of(host).running == []


async def test_aliases_are_unique_and_names_bounded(host: ModelHost) -> None:
    await explicit_load(host, "a", aliases=["shared"])
    with pytest.raises(InvalidArgument, match="'shared' is already used"):
        host.prepare(load("b", aliases=["shared"]))
    with pytest.raises(InvalidArgument, match=r"served_model_name .* must be"):
        host.prepare(load("b", served_model_name="x\x00y"))
    with pytest.raises(InvalidArgument, match="keep_alive_s"):
        host.prepare(load("b", keep_alive_s=float("inf")))


async def test_unload_by_name_and_all(host: ModelHost) -> None:
    host.settings.max_models = 3
    for name in ("a", "b"):
        await explicit_load(host, name)
    with pytest.raises(NotFound):
        await host.unload("zzz")
    await host.unload("a")
    assert states(host) == {"b": LOADED}
    await host.unload("")
    assert states(host) == {} and host.board.status.state == IDLE
    with pytest.raises(FailedPrecondition, match="no model loaded"):
        await generate(host, "")


async def test_a_crashed_model_is_restarted_and_requests_wait_for_it(host: ModelHost) -> None:
    await explicit_load(host, "a")
    adapter_of(host).gate.clear()
    adapter_of(host).running[0].die("segfault")
    await host.board.wait_for(timeout=10, state=ERROR)
    assert "segfault" in host.board.status.error
    waiting = asyncio.ensure_future(generate(host, "a"))
    await host.board.wait_for(timeout=10, state=LOADING)
    assert not waiting.done()
    adapter_of(host).gate.set()
    assert await waiting == "hello"
    assert adapter_of(host).launches == ["a", "a"]


@pytest.mark.timeout(60)
async def test_a_request_during_a_switch_waits_for_the_new_model(host: ModelHost) -> None:
    """A request arriving while the old model stops must not spin on it (it once did, starving
    the event loop so that the stop never finished)."""
    await explicit_load(host, "a")
    old = host.find("a")
    assert old is not None
    adapter_of(host).stop_gate.clear()  # the old model's stop waits
    switching = host.begin_load(load("b")).task
    assert switching is not None
    while not old.removed:  # noqa: ASYNC110 (let the load task run up to the stop)
        await asyncio.sleep(0)
    request = asyncio.ensure_future(generate(host, ""))
    for _ in range(10):
        await asyncio.sleep(0)  # the loop still runs: the request waits, it does not spin
    assert not request.done()
    adapter_of(host).stop_gate.set()
    await switching
    assert await asyncio.wait_for(request, 10) == "hello"
    assert states(host) == {"b": LOADED}


@pytest.mark.parametrize("host", [{"max_models": 1, "load_wait_s": 20}], indirect=True)
@pytest.mark.timeout(60)
async def test_two_models_on_demand_with_room_for_one_take_turns(host: ModelHost) -> None:
    """Each waiting request holds its model: no load evicts a model a request still waits
    for (they once evicted each other in a loop, hundreds of loads, both failing)."""
    assert sorted(await asyncio.gather(generate(host, "a", "x"), generate(host, "b", "y"))) == ["x", "y"]
    assert len(adapter_of(host).launches) <= 3


@pytest.mark.parametrize("host", [{"load_wait_s": 0.2}], indirect=True)
async def test_a_load_slower_than_load_wait_is_unavailable_not_internal(host: ModelHost) -> None:
    adapter_of(host).gate.clear()
    with pytest.raises(Unavailable, match=r"still loading after 0\.2s"):
        await generate(host, "a")
    adapter_of(host).gate.set()


async def test_an_unload_whose_caller_leaves_still_stops_the_model(host: ModelHost) -> None:
    await explicit_load(host, "a")
    adapter_of(host).stop_gate.clear()
    unload = asyncio.ensure_future(host.unload("a"))
    while not adapter_of(host).running[0].stopped:  # noqa: ASYNC110 (let the stop begin)
        await asyncio.sleep(0)
    unload.cancel()  # the UnloadModel caller went away
    await asyncio.gather(unload, return_exceptions=True)
    assert states(host) == {"a": LOADED}  # listed (and holding its memory) until it has stopped
    adapter_of(host).stop_gate.set()
    await until(lambda: states(host) == {})
    assert adapter_of(host).running == []


async def test_an_unload_before_a_load_starts_cancels_it_cleanly(host: ModelHost) -> None:
    task = host.begin_load(load("a")).task
    assert task is not None
    await host.unload("")
    with pytest.raises(Unavailable, match="cancelled"):
        await task
    assert adapter_of(host).launches == []


async def test_a_hub_name_with_its_prefix_finds_its_model(host: ModelHost) -> None:
    await explicit_load(host, "a", served_model_name="org/repo:Q4_K_M")
    assert await generate(host, "hf:org/repo:Q4_K_M") == "hello"
    assert adapter_of(host).launches == ["org/repo:Q4_K_M"]


async def test_a_failed_load_on_demand_is_retried_after_a_pause(
    host: ModelHost, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Internal):
        await generate(host, "broken")
    (root / "broken.fake").write_text("weights now")  # the cause went away
    with pytest.raises(Internal, match="rotten"):
        await generate(host, "broken")  # too soon: the failure stands
    monkeypatch.setattr("switchyard.engine.host.RETRY_FAILED_LOAD_S", 0.0)
    assert await generate(host, "broken") == "hello"


async def test_requests_wait_through_a_crash_until_the_restart(host: ModelHost) -> None:
    await explicit_load(host, "a")
    adapter_of(host).stop_gate.clear()  # the crashed model's cleanup takes a while
    adapter_of(host).running[0].die("segfault")
    await host.board.wait_for(timeout=10, state=ERROR)
    request = asyncio.ensure_future(generate(host, "a"))
    await asyncio.sleep(0)
    assert not request.done()  # it waits for the restart rather than failing at once
    adapter_of(host).stop_gate.set()
    assert await asyncio.wait_for(request, 10) == "hello"


async def test_a_keep_alive_past_a_year_is_refused_and_the_engine_stays_usable(host: ModelHost) -> None:
    with pytest.raises(InvalidArgument, match="keep_alive_s"):
        host.prepare(load("b", keep_alive_s=1e12))
    await explicit_load(host, "a", keep_alive_s=365 * 24 * 3600.0)
    assert host.board.status.models[0].HasField("expires_at")
    await host.unload("a")
    assert states(host) == {}


async def test_names_cannot_take_over_other_models(host: ModelHost) -> None:
    await explicit_load(host, "a")
    with pytest.raises(InvalidArgument, match="'a' is already used"):
        host.prepare(load("b", aliases=["a"]))
    with pytest.raises(InvalidArgument, match="another model under the model roots"):
        host.prepare(load("b", aliases=["c"]))  # c.fake lies under the roots: its on-demand load stays its own
    for bad in ("../x", "x/y", "org/repo:Q4_K_M", " a", "a b", "-a", "x" * 129):
        with pytest.raises(InvalidArgument, match="aliases"):
            host.prepare(load("b", aliases=[bad]))
    for bad in ("../x", ".hidden", "a b", "x" * 129):
        with pytest.raises(InvalidArgument, match="served_model_name"):
            host.prepare(load("b", served_model_name=bad))
    assert host.prepare(load("b", served_model_name="org/repo:Q4_K_M", aliases=["gpt-4o-mini", "qwen3:0.6b"])).names
