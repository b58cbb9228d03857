"""The images carry what their service needs and nothing heavy it does not."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.containers.podman import Built, host_llama_server, image, podman

# Each test's own body; the image builds (the `images` fixture) have limits of their own
# (podman.BUILD_LIMITS_S), and so do the waits of the module's fixtures.
pytestmark = pytest.mark.timeout(300, func_only=True)

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


def test_llamacpp_image_reuses_the_host_llama_server(images: dict[str, Built]) -> None:
    """llama.cpp is compiled once on a machine: the image carries the binary `make llama-server`
    built, byte for byte (the build stage copied it instead of compiling)."""
    host = host_llama_server()
    if host is None:
        pytest.skip("no CPU llama-server build in the cache (make llama-server): the image compiled its own")
    origin = images["engine-llamacpp"].llama_server
    if origin.startswith("compiled in the image"):
        pytest.skip(f"the image's build stage could not take the host's build: {origin}")
    folder, _ = host
    want = hashlib.sha256((folder / "bin" / "llama-server").read_bytes()).hexdigest()
    digest = "import hashlib; print(hashlib.sha256(open('/usr/local/bin/llama-server', 'rb').read()).hexdigest())"
    assert podman("run", "--rm", image("engine-llamacpp"), "python", "-c", digest).stdout.strip() == want, (
        f"the image's llama-server is not the host's build in {folder} ({origin})"
    )


def test_vllm_image_has_vllm_and_no_llama_server(images: dict[str, Built]) -> None:
    assert contents("engine-vllm") == {"modules": ["torch", "vllm"], "llama_server": None}
