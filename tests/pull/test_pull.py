"""Pulling models from a (local) Hugging Face hub on the real engines: pull, then load and
generate; a cut download resumes; two pulls share one download; hostile names, a file bigger
than the disk and a gated repository fail clearly and leave nothing behind; a caller that goes
away cancels the pull; offline mode; autopull."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import ENGINES, LLAMACPP, EngineUnderTest
from tests.helpers import ServiceProcess, wait_until
from tests.hub import LocalHub
from tests.pull.conftest import DEMO_REPO, GGUF_NAME, TOKEN, start_engine

DONE, FAILED = control_pb2.PULL_STATE_DONE, control_pb2.PULL_STATE_FAILED


def ref(engine: EngineUnderTest, repo: str = DEMO_REPO) -> str:
    return f"{repo}:F32" if engine.name == "llamacpp" else repo


def pull(service: ServiceProcess, engine: EngineUnderTest, model: str) -> list[control_pb2.PullProgress]:
    request = control_pb2.PullModelRequest(engine=engine.kind, model=model)
    return [event.progress for event in service.control.PullModel(request, timeout=300)]


def greedy(model: str) -> pb.GenerateRequest:
    return pb.GenerateRequest(
        model=model,
        prompt="The quick brown fox",
        sampling=pb.SamplingParams(temperature=0.0),
        stopping=pb.StoppingCriteria(max_tokens=8, ignore_eos=True),
        output=pb.OutputOptions(return_token_ids=True),
    )


def token_ids(service: ServiceProcess, model: str) -> list[int]:
    return [t for r in service.inference.Generate(greedy(model), timeout=600) for t in r.delta.token_ids]


def leftovers(root: Path) -> list[str]:
    """What a failed or cancelled pull left under the root (a lock file may stay)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".lock")


@pytest.fixture(scope="module", params=ENGINES, ids=[e.name for e in ENGINES])
def engine(request: pytest.FixtureRequest) -> EngineUnderTest:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pulling(
    engine: EngineUnderTest, hub: LocalHub, tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path
) -> Iterator[tuple[ServiceProcess, Path]]:
    """An engine service whose first root is empty (pulls land there) and whose second holds
    the demo model, to compare the pulled weights with."""
    root = tmp_path_factory.mktemp("pulled")
    service = start_engine(
        engine,
        root,
        tmp_path_factory.mktemp("logs"),
        hub,
        "--max-models",
        "2",
        "--model-roots",
        f"{root},{demo_model_dir}",
    )
    yield service, root
    service.stop()


def test_pull_then_load_and_generate(pulling: tuple[ServiceProcess, Path], engine: EngineUnderTest) -> None:
    service, root = pulling
    events = pull(service, engine, ref(engine))
    states = [e.state for e in events]
    assert states[0] == control_pb2.PULL_STATE_RESOLVING and states[-1] == DONE
    done = events[-1]
    assert done.name == ref(engine) and len(done.revision) == 40 and done.bytes_done == done.bytes_total > 0
    path = Path(done.model_path)
    assert path == (root / DEMO_REPO / GGUF_NAME if engine.name == "llamacpp" else root / DEMO_REPO)
    listed = {m.name: m for m in service.control.ListModels(control_pb2.ListModelsRequest(), timeout=30).models}
    assert ref(engine) in listed and not leftovers(root / ".switchyard-partial")
    # the pulled model is the demo model: the same weights give the same tokens
    assert token_ids(service, ref(engine)) == token_ids(service, "switchyard-demo")


def test_pulling_again_downloads_nothing(
    pulling: tuple[ServiceProcess, Path], engine: EngineUnderTest, hub: LocalHub
) -> None:
    service, _ = pulling
    before = len(hub.log)
    assert pull(service, engine, ref(engine))[-1].state == DONE
    assert not any("/resolve/" in path for _, path in hub.log[before:])


def test_load_by_hub_id(pulling: tuple[ServiceProcess, Path], engine: EngineUnderTest) -> None:
    service, _ = pulling
    request = control_pb2.LoadModelRequest(
        engine=engine.kind, model_path=f"hf:{ref(engine)}", served_model_name="by-id"
    )
    events = list(service.control.LoadModel(request, timeout=600))
    assert events[-1].state == control_pb2.MODEL_STATE_LOADED and events[-1].progress == 1.0
    assert token_ids(service, "by-id") == token_ids(service, "switchyard-demo")


@pytest.fixture
def llama(hub: LocalHub, tmp_path: Path) -> Iterator[tuple[ServiceProcess, Path]]:
    """A fresh llama.cpp engine service with an empty root (cheap to start)."""
    root = tmp_path / "root"
    root.mkdir()
    service = start_engine(LLAMACPP, root, tmp_path, hub)
    yield service, root
    service.stop()


def test_a_cut_download_resumes(llama: tuple[ServiceProcess, Path], hub: LocalHub) -> None:
    service, root = llama
    hub.cut_after(GGUF_NAME, 1536 * 1024, repo_id=DEMO_REPO)  # after one whole 1 MiB chunk
    before = len(hub.requests_for(GGUF_NAME, repo_id=DEMO_REPO))
    assert pull(service, LLAMACPP, f"{DEMO_REPO}:F32")[-1].state == DONE
    ranges = hub.requests_for(GGUF_NAME, repo_id=DEMO_REPO)[before:]
    assert ranges[0] is None and any(r is not None and r.startswith("bytes=1048576-") for r in ranges[1:]), ranges
    assert (root / DEMO_REPO / GGUF_NAME).stat().st_size > 2 * 1024 * 1024


def test_two_concurrent_pulls_share_one_download(llama: tuple[ServiceProcess, Path], hub: LocalHub) -> None:
    service, _ = llama
    before = len(hub.requests_for(GGUF_NAME, repo_id=DEMO_REPO))
    hub.delay_per_chunk = 0.02
    try:
        results: list[list[control_pb2.PullProgress]] = []
        threads = [
            threading.Thread(target=lambda: results.append(pull(service, LLAMACPP, f"{DEMO_REPO}:F32")))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        hub.delay_per_chunk = 0.0
    assert [r[-1].state for r in results] == [DONE, DONE]
    assert len(hub.requests_for(GGUF_NAME, repo_id=DEMO_REPO)) - before == 1


@pytest.mark.parametrize(
    ("model", "code", "words"),
    [
        ("evil/names", grpc.StatusCode.FAILED_PRECONDITION, "outside the repository"),
        ("huge/model:F32", grpc.StatusCode.RESOURCE_EXHAUSTED, "GiB are free"),
        ("switchyard/gated:F32", grpc.StatusCode.PERMISSION_DENIED, "gated"),
        ("nobody/nothing", grpc.StatusCode.NOT_FOUND, "no such repository"),
        (f"{DEMO_REPO}:Q2_K", grpc.StatusCode.NOT_FOUND, "it has: F32"),
        ("not a repo", grpc.StatusCode.INVALID_ARGUMENT, "repository id"),
    ],
    ids=["hostile-names", "too-big", "gated-without-token", "unknown-repo", "unknown-quant", "bad-id"],
)
def test_a_failing_pull_is_clear_and_leaves_nothing(
    llama: tuple[ServiceProcess, Path], model: str, code: grpc.StatusCode, words: str
) -> None:
    service, root = llama
    with pytest.raises(grpc.RpcError) as info:
        pull(service, LLAMACPP, model)
    assert info.value.code() == code, info.value.details()
    assert words in (info.value.details() or "")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        trailing: Any = info.value.trailing_metadata() or ()
        assert ("switchyard-reason", "INSUFFICIENT_STORAGE") in [(m.key, m.value) for m in trailing]
    assert leftovers(root) == []
    assert TOKEN not in service.log_tail(400)


def test_a_gated_repository_opens_with_a_token(hub: LocalHub, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    service = start_engine(LLAMACPP, root, tmp_path, hub, "--hf-token-file", str(token_file))
    try:
        assert pull(service, LLAMACPP, "switchyard/gated:F32")[-1].state == DONE
        assert TOKEN not in service.log_tail(400)
    finally:
        service.stop()


def test_a_pull_whose_caller_leaves_is_cancelled_and_cleaned_up(
    llama: tuple[ServiceProcess, Path], hub: LocalHub
) -> None:
    service, root = llama
    hub.delay_per_chunk = 0.05
    try:
        call = service.control.PullModel(
            control_pb2.PullModelRequest(engine=LLAMACPP.kind, model=f"{DEMO_REPO}:F32"), timeout=300
        )
        for event in call:
            if event.progress.state == control_pb2.PULL_STATE_DOWNLOADING:
                break
        call.cancel()

        def pulls() -> int:
            status = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
            return len(status.pulls)

        wait_until(lambda: pulls() == 0, 60, "the pull to stop")
        wait_until(lambda: leftovers(root) == [], 60, "the partial download to be removed")
    finally:
        hub.delay_per_chunk = 0.0
    assert not (root / DEMO_REPO).exists()


def test_offline_mode_refuses_to_pull(hub: LocalHub, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    service = start_engine(LLAMACPP, root, tmp_path, hub, HF_HUB_OFFLINE="1")
    try:
        with pytest.raises(grpc.RpcError) as info:
            pull(service, LLAMACPP, f"{DEMO_REPO}:F32")
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "offline" in (info.value.details() or "")
    finally:
        service.stop()


def test_autopull_loads_a_hub_model_a_request_names(hub: LocalHub, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    service = start_engine(LLAMACPP, root, tmp_path, hub, "--autopull")
    try:
        responses = list(service.inference.Generate(greedy(f"{DEMO_REPO}:F32"), timeout=600))
        assert responses[-1].finished.usage.completion_tokens == 8
        status = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
        assert [m.name for m in status.models] == [f"{DEMO_REPO}:F32"]
    finally:
        service.stop()
