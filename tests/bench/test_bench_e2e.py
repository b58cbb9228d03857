"""``python -m bench`` end to end: a real llama-server directly, its OpenAI endpoint, and the same
server through the llama.cpp engine service, compared in one invocation."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.v1 import control_pb2
from tests.conformance.engines import LLAMACPP, llama_server_port, load_request
from tests.helpers import ROOT, ServiceProcess

pytestmark = pytest.mark.engine

TARGETS = ("direct", "oai", "engine")


@pytest.fixture(scope="module")
def engine_service(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("bench-logs") / "engine_llamacpp.log"
    service = ServiceProcess(LLAMACPP.module, ["--model-roots", str(model_root)], log).start()
    try:
        events = list(service.control.LoadModel(load_request(LLAMACPP), timeout=300))
        assert events[-1].state == control_pb2.MODEL_STATE_LOADED, events[-1]
        yield service
    finally:
        service.stop()


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def test_bench_compares_llama_server_with_the_engine_service(engine_service: ServiceProcess, tmp_path: Path) -> None:
    port = llama_server_port(engine_service)
    out = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--target",
        f"direct=llama-server:http://127.0.0.1:{port}",
        "--target",
        f"oai=openai:http://127.0.0.1:{port}",
        "--target",
        f"engine=grpc:{engine_service.address},engine=llamacpp,model={LLAMACPP.served_name}",
        "--lengths",
        "8,16",
        "--concurrency",
        "1,2",
        "--parallel-tokens",
        "16",
        "--warmup-tokens",
        "4",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr

    single = rows(out / "single_stream.csv")
    assert [(r["target"], r["max_tokens"]) for r in single] == [(t, n) for n in ("8", "16") for t in TARGETS]
    parallel = rows(out / "parallel.csv")
    assert [(r["target"], r["concurrency"]) for r in parallel] == [(t, c) for c in ("1", "2") for t in TARGETS]
    for row in single + parallel:
        # exact counts: every request generated max_tokens (the bench also checks each one)
        assert int(row["completion_tokens"]) == int(row["requests"]) * int(row["max_tokens"]), row
        assert int(row["requests"]) == int(row["concurrency"])
        assert float(row["tokens_per_s"]) > 0 and float(row["ttft_p50_ms"]) > 0
    assert {float(r["ratio_to_baseline"]) for r in single if r["target"] == "direct"} == {1.0}

    report = (out / "results.md").read_text(encoding="utf-8")
    assert report in done.stdout
    assert "| max_tokens | direct tok/s | oai tok/s | engine tok/s | oai / direct | engine / direct |" in report
    assert "| streams | direct tok/s |" in report
    assert (out / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert "req" in done.stderr  # the progress bar


def test_bench_fails_loudly_on_an_unreachable_target(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", "--target", "llama-server:http://127.0.0.1:9", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "bench: error: llama-server: ConnectError" in done.stderr
    assert not (tmp_path / "results.md").exists()
