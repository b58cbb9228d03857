"""The status board: watchers see the current state at once and every later change."""

from __future__ import annotations

import asyncio

from switchyard.engine.status import StatusBoard
from switchyard.v1 import common_pb2, control_pb2

LLAMA = common_pb2.ENGINE_LLAMACPP


def status(**fields: object) -> control_pb2.EngineStatus:
    return control_pb2.EngineStatus(engine=LLAMA, **fields)  # type: ignore[arg-type]


async def test_watch_yields_current_then_changes() -> None:
    board = StatusBoard(LLAMA, "v1")
    watch = board.watch()
    first = await anext(watch)
    assert first.state == control_pb2.MODEL_STATE_IDLE and first.engine_version == "v1"
    pending = asyncio.ensure_future(anext(watch))
    board.publish(status(state=control_pb2.MODEL_STATE_LOADING, model="m"))
    second = await asyncio.wait_for(pending, 5)
    assert second.state == control_pb2.MODEL_STATE_LOADING and second.model == "m"
    await watch.aclose()


async def test_publishing_the_same_status_does_not_notify() -> None:
    board = StatusBoard(LLAMA, "v1")
    _, changed = board.snapshot()
    board.publish(status(state=control_pb2.MODEL_STATE_IDLE, engine_version="v1"))
    assert not changed.is_set()
    board.publish(status(load=control_pb2.Load(running_requests=2)))
    assert changed.is_set()
    assert board.status.load.running_requests == 2


async def test_wait_for_returns_when_fields_match() -> None:
    board = StatusBoard(LLAMA)
    waiter = asyncio.ensure_future(board.wait_for(timeout=5, state=control_pb2.MODEL_STATE_LOADED))
    board.publish(status(state=control_pb2.MODEL_STATE_LOADING))
    board.publish(status(state=control_pb2.MODEL_STATE_LOADED))
    assert (await waiter).state == control_pb2.MODEL_STATE_LOADED
