"""The models file on the real llama.cpp engine service: a preloaded preset, a preset loaded on
demand by its alias with its own context size (in the status and on llama-server's command
line), edits applied while it runs, a broken edit refused without disturbing traffic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import LLAMACPP
from tests.helpers import ServiceProcess, wait_until

PRESETS = """
models:
  demo-long:
    engine: llamacpp
    source: switchyard-demo.gguf
    description: preloaded, the whole context
    preload: true
    options: {ctx_size: 4096}
  demo-short:
    engine: llamacpp
    source: switchyard-demo.gguf
    aliases: [short]
    keep_alive_s: 600
    options: {ctx_size: 1024}
  demo-vllm:
    engine: vllm
    source: switchyard-demo
"""
EXTRA = """  demo-extra:
    engine: llamacpp
    source: switchyard-demo.gguf
    options: {ctx_size: 512}
"""


@pytest.fixture(scope="module")
def models_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("presets") / "models.yaml"
    path.write_text(PRESETS)
    return path


@pytest.fixture(scope="module")
def service(model_root: Path, models_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    args = ["--model-roots", str(model_root), "--models-file", str(models_file), "--max-models", "2"]
    started = ServiceProcess(
        LLAMACPP.module, [*args, "--models-file-poll-s", "0.2"], tmp_path_factory.mktemp("l") / "e.log"
    )
    yield started.start()
    started.stop()


def models(service: ServiceProcess) -> dict[str, control_pb2.ModelStatus]:
    status = service.control.GetStatus(control_pb2.GetStatusRequest(), timeout=10).statuses[0]
    return {m.name: m for m in status.models}


def listed(service: ServiceProcess) -> set[str]:
    return {m.name for m in service.control.ListModels(control_pb2.ListModelsRequest(), timeout=30).models}


def generate(service: ServiceProcess, model: str) -> list[pb.GenerateResponse]:
    request = pb.GenerateRequest(model=model, prompt="Hi", stopping=pb.StoppingCriteria(max_tokens=4, ignore_eos=True))
    return list(service.inference.Generate(request, timeout=300))


def context_on_the_command_line(service: ServiceProcess) -> list[str]:
    children = [p for p in service.children() if p.name() == "llama-server"]
    return sorted(p.cmdline()[p.cmdline().index("-c") + 1] for p in children)


def test_a_preloaded_preset_is_loaded_at_start_with_its_options(service: ServiceProcess) -> None:
    def preloaded() -> bool:
        model = models(service).get("demo-long")
        return model is not None and model.state == control_pb2.MODEL_STATE_LOADED

    wait_until(preloaded, 300, "demo-long preloaded")
    loaded = models(service)["demo-long"]
    assert loaded.max_model_len == 4096
    assert {"demo-long", "demo-short"} <= listed(service) and "demo-vllm" not in listed(service)


def test_a_load_on_demand_by_alias_gets_its_presets_options(service: ServiceProcess) -> None:
    answer = generate(service, "short")
    assert answer[-1].finished.usage.completion_tokens == 4
    short = models(service)["demo-short"]
    assert short.max_model_len == 1024 and list(short.aliases) == ["short"] and short.keep_alive_s == 600
    assert short.HasField("expires_at")
    assert context_on_the_command_line(service) == ["1024", "4096"]


def test_an_edit_adds_a_preset_and_a_broken_edit_changes_nothing(service: ServiceProcess, models_file: Path) -> None:
    models_file.write_text(PRESETS + EXTRA)
    wait_until(lambda: "demo-extra" in listed(service), 60, "the new preset listed")
    models_file.write_text("models: {broken")
    wait_until(lambda: "models file not reloaded" in service.log_path.read_text(), 60, "the broken edit refused")
    assert generate(service, "demo-short")[-1].finished.usage.completion_tokens == 4  # traffic goes on
    assert {"demo-extra", "demo-short", "demo-long"} <= listed(service)


def test_a_changed_preset_is_unloaded_once_idle_and_loads_anew(service: ServiceProcess, models_file: Path) -> None:
    generate(service, "demo-short")
    models_file.write_text(PRESETS.replace("ctx_size: 1024", "ctx_size: 2048") + EXTRA)
    wait_until(lambda: "demo-short" not in models(service), 60, "demo-short unloaded after its edit")
    generate(service, "short")
    assert models(service)["demo-short"].max_model_len == 2048
