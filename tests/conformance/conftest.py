"""Fixtures of the conformance suite: one engine service per module, per engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.v1 import control_pb2
from tests.conformance.engines import ENGINES, EngineUnderTest, load_request
from tests.helpers import ServiceProcess


@pytest.fixture(scope="module", params=ENGINES, ids=[e.name for e in ENGINES])
def engine(request: pytest.FixtureRequest) -> EngineUnderTest:
    return request.param  # type: ignore[no-any-return]


def start_service(engine: EngineUnderTest, model_root: Path, log_dir: Path, *extra: str) -> ServiceProcess:
    return ServiceProcess(
        engine.module,
        ["--model-roots", str(model_root), *engine.service_args, *extra],
        log_dir / f"{engine.name}.log",
    ).start()


@pytest.fixture(scope="module")
def idle_service(
    engine: EngineUnderTest, model_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A fresh engine service with no model loaded."""
    service = start_service(engine, model_root, tmp_path_factory.mktemp("logs"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def loaded_service(
    engine: EngineUnderTest, model_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A fresh engine service with the demo model loaded."""
    service = start_service(engine, model_root, tmp_path_factory.mktemp("logs"))
    events = list(service.control.LoadModel(load_request(engine), timeout=300))
    assert events[-1].state == control_pb2.MODEL_STATE_LOADED, events[-1]
    yield service
    service.stop()
