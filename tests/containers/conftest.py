"""The container tier: deploy/'s images built with podman and run as compose and Kubernetes
would run them, with the demo model reaching the engines on a volume. The figures it measured
(build times, image sizes, time to a serving stack) are printed after the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.containers.podman import TARGETS, Built, available, build, ensure_base_image
from tests.helpers import report_section

FIGURES = report_section("container tier figures")


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """The four images, built (or found in podman's layer cache) from deploy/docker/Dockerfile,
    each within its own time limit (podman.BUILD_LIMITS_S)."""
    reason = available()
    if reason:
        pytest.skip(reason)
    logs = tmp_path_factory.mktemp("builds")
    base_seconds = ensure_base_image()
    if base_seconds is not None:
        FIGURES.append(f"local Debian base image (mmdebstrap | podman import): {base_seconds:.0f} s")
    built = {target: build(target, logs / f"{target}.log") for target in TARGETS}
    FIGURES.append("image builds: " + ", ".join(f"{b.target} {b.seconds:.0f} s" for b in built.values()))
    FIGURES.append("image sizes: " + ", ".join(f"{b.target} {b.size_mb:.0f} MB" for b in built.values()))
    FIGURES.append(f"engine-llamacpp's llama-server: {built['engine-llamacpp'].llama_server}")
    return built


@pytest.fixture(scope="session")
def models_volume(demo_model_dir: Path) -> Path:
    """The folder mounted at /workspace/models: the demo model, readable by the images' uid 10001."""
    for path in (demo_model_dir, *demo_model_dir.rglob("*")):
        assert path.stat().st_mode & 0o004, f"{path} is not world-readable; uid 10001 could not read it"
    return demo_model_dir
