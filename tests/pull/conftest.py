"""A local hub serving the demo model (as HF files and as a GGUF), a gated copy, a repository
listing a hostile file name and one listing a file too big for any disk; engine services
pointed at it with HF_ENDPOINT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.engines import EngineUnderTest
from tests.helpers import ServiceProcess
from tests.hub import HubRepo, LocalHub

TOKEN = "hf_test_token_never_logged"
DEMO_REPO = "switchyard/demo"
GGUF_NAME = "switchyard-demo-F32.gguf"
VLLM_ARGS = ["--default-dtype", "float32", "--cpu-kv-cache-bytes", str(96 * 1024**2)]


def demo_files(demo_model_dir: Path) -> dict[str, bytes]:
    folder = demo_model_dir / "switchyard-demo"
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "switchyard_demo.json"}
    files[GGUF_NAME] = (demo_model_dir / "switchyard-demo.gguf").read_bytes()
    files["README.md"] = b"# the switchyard demo model\n"
    return files


@pytest.fixture(scope="session")
def hub(demo_model_dir: Path) -> Iterator[LocalHub]:
    files = demo_files(demo_model_dir)
    repos = {
        DEMO_REPO: HubRepo(files),
        "switchyard/gated": HubRepo(files, gated=True, token=TOKEN),
        "evil/names": HubRepo({**files, "../escape.safetensors": b"x" * 64}),
        "huge/model": HubRepo(files, listed_sizes={"model.safetensors": 10**15, GGUF_NAME: 10**15}),
    }
    with LocalHub(repos) as started:
        yield started


def hub_env(hub: LocalHub, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a service that pulls from ``hub`` (no token, online)."""
    return {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "",
        "HF_TOKEN": "",
        **extra,
    }


def start_engine(
    engine: EngineUnderTest, roots: Path | str, logs: Path, hub: LocalHub, *args: str, **env: str
) -> ServiceProcess:
    """An engine service pulling from ``hub`` into the first of ``roots`` (comma-separated)."""
    extra = VLLM_ARGS if engine.name == "vllm" else []
    service = ServiceProcess(
        engine.module,
        ["--model-roots", str(roots), *extra, *args],
        logs / f"{engine.name}.log",
        env=hub_env(hub, logs / "hf-home", **env),
    )
    return service.start()
