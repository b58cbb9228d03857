"""A client in another language: examples/node (Node.js, @grpc/grpc-js, the contract loaded
from proto/) against the router of the real stack, on each engine."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from switchyard.v1 import common_pb2, control_pb2, control_pb2_grpc, inference_pb2, inference_pb2_grpc
from tests.e2e.conftest import E2E_ENGINES, SERVED, Stack
from tests.helpers import ROOT, wait_until

NODE_CLIENT = ROOT / "examples" / "node"
NODE = shutil.which("node")


@pytest.fixture(scope="module")
def node_client() -> str:
    """The example's dependencies, installed from its lock file once."""
    if NODE is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    if not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_CLIENT, check=True, timeout=600)
    return NODE


@pytest.mark.parametrize("engine", [e.name for e in E2E_ENGINES])
def test_the_node_client_streams_cancels_and_reads_the_status(stack: Stack, node_client: str, engine: str) -> None:
    run = subprocess.run(
        [node_client, "client.mjs", stack.router.address, "--model", SERVED[engine], "--engine", engine],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert f"ENGINE_{engine.upper()}:{SERVED[engine]}:MODEL_STATE_LOADED" in seen["models"]
    assert seen["completion_tokens"] == 16 and seen["finish_reason"] == "FINISH_REASON_LENGTH"
    assert seen["engine"] == f"ENGINE_{engine.upper()}" and seen["model"] == SERVED[engine]
    assert seen["cancel_code"] == "CANCELLED"

    # The same greedy request from Python gives the same text: one contract, two languages.
    assert stack.router.channel is not None
    request = inference_pb2.GenerateRequest(
        model=SERVED[engine],
        prompt="こんにちは",
        sampling=inference_pb2.SamplingParams(temperature=0),
        stopping=inference_pb2.StoppingCriteria(max_tokens=16, ignore_eos=True),
    )
    stub = inference_pb2_grpc.InferenceStub(stack.router.channel)
    text = "".join(r.delta.text for r in stub.Generate(request, timeout=120) if r.HasField("delta"))
    assert text == seen["text"]

    # The cancelled generation was stopped in the engine, not left running.
    channel = stack.engines[engine].channel
    assert channel is not None
    control = control_pb2_grpc.ControlStub(channel)

    def idle() -> bool:
        statuses = control.GetStatus(control_pb2.GetStatusRequest(engine=common_pb2.ENGINE_UNSPECIFIED)).statuses
        return all(m.in_flight == 0 for s in statuses for m in s.models)

    wait_until(idle, 30, "the cancelled generation to leave the engine")
