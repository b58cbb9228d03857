"""The engines' own metrics on the engine services' /metrics, beside switchyard's: vLLM's
``vllm:`` families (registered in the service's process) and llama-server's ``llamacpp:``
families (read with the status poll, labelled with the model), so their dashboards work."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchyard.runtime.net import free_port
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import EngineUnderTest, load_request
from tests.deploy.test_grafana import dashboard_metrics
from tests.e2e.conftest import E2E_ENGINES
from tests.helpers import ServiceProcess, wait_until

FAMILIES = {"llamacpp": ("llamacpp:prompt_tokens", "llamacpp:tokens_predicted"), "vllm": ("vllm:generation_tokens",)}


@pytest.mark.parametrize("engine", E2E_ENGINES, ids=[e.name for e in E2E_ENGINES])
def test_the_engines_own_metric_families_are_scraped_from_the_engine_service(
    engine: EngineUnderTest, model_root: Path, tmp_path: Path
) -> None:
    port = free_port()
    args = ["--model-roots", str(model_root), "--metrics-port", str(port), "--status-poll-s", "0.2"]
    service = ServiceProcess(engine.module, args, tmp_path / "engine.log").start()
    try:
        list(service.control.LoadModel(load_request(engine), timeout=600))
        request = pb.GenerateRequest(prompt="Hello", stopping=pb.StoppingCriteria(max_tokens=8, ignore_eos=True))
        list(service.inference.Generate(request, timeout=120))

        def counted() -> dict[str, float]:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            found = {
                sample.name: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.labels.get("model", sample.labels.get("model_name")) == engine.served_name
            }
            wanted = [n for n in found if n.startswith(FAMILIES[engine.name]) and found[n] > 0]
            return found if wanted and "switchyard_engine_generated_tokens_total" in text else {}

        found = wait_until(counted, 60, f"{engine.name}'s own metrics with a model label")
        assert any(name.startswith(engine.name + ":") for name in found)
        asked = dashboard_metrics(engine.name + ":")  # deploy/grafana's queries find them all
        assert asked and asked <= set(found), asked - set(found)
    finally:
        service.stop()
