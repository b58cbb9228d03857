"""The images carry what their service needs and nothing heavy it does not."""

from __future__ import annotations

import json

import pytest

from tests.containers.podman import Built, image, podman

# The first test also waits for the images: a cold build takes tens of minutes on 2 cores.
pytestmark = pytest.mark.timeout(3600)

HEAVY = ("torch", "vllm", "matplotlib")
PROBE = (
    "import importlib.util, json, shutil; "
    f"print(json.dumps({{'modules': [m for m in {HEAVY!r} if importlib.util.find_spec(m)], "
    "'llama_server': shutil.which('llama-server')}))"
)


def contents(target: str) -> dict[str, object]:
    found = json.loads(podman("run", "--rm", image(target), "python", "-c", PROBE).stdout)
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("target", ["gateway", "router"])
def test_gateway_and_router_images_are_lean(images: dict[str, Built], target: str) -> None:
    assert contents(target) == {"modules": [], "llama_server": None}


def test_llamacpp_image_runs_its_llama_server(images: dict[str, Built]) -> None:
    assert contents("engine-llamacpp") == {"modules": [], "llama_server": "/usr/local/bin/llama-server"}
    # Every library it links is in the image, and it reports the pinned build.
    version = podman("run", "--rm", image("engine-llamacpp"), "llama-server", "--version")
    assert "llama-cpp-python-0.3.36" in version.stdout + version.stderr


def test_vllm_image_has_vllm_and_no_llama_server(images: dict[str, Built]) -> None:
    assert contents("engine-vllm") == {"modules": ["torch", "vllm"], "llama_server": None}
