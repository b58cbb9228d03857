"""The Kubernetes manifests (overlay cpu, as kustomize renders them) run by `podman kube play`.

podman is not a cluster, and this test changes only what podman cannot do, each change named:
- no Service DNS: the router's backend and the gateway's router address are the pods' IPs, which
  the test writes into the rendered ConfigMaps, so the pods start one after another;
- every containerPort is published on the host in podman 4.3, so two replicas (or the engine's
  and the router's metrics ports) would collide: one replica each, and each port gets a free
  hostPort;
- no NetworkPolicy, no probes of kind grpc (podman ignores both); the images' own health check
  is run in each container instead.
Everything else is the manifests as written: images, ConfigMaps, the security contexts
(uid 10001, read-only root, no capabilities), the emptyDir and the models PVC as a volume.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from switchyard.runtime.net import free_port
from tests.containers.conftest import FIGURES
from tests.containers.podman import Built, podman
from tests.helpers import ROOT, openai_client, wait_until

# Each test's own body; the image builds (the `images` fixture) have limits of their own
# (podman.BUILD_LIMITS_S), and so do the waits of the module's fixtures.
pytestmark = pytest.mark.timeout(1200, func_only=True)

OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "cpu"
ORDER = ("engine-llamacpp", "router", "gateway")  # each needs the one before it by address
MODELS_PVC = "switchyard-models"
HEALTH_CHECKS = {
    "engine-llamacpp": ["grpc", "50062"],
    "router": ["grpc", "50051"],
    "gateway": ["http", "8080", "/health"],
}


def render() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not on PATH (needed for `kubectl kustomize`)")
    out = subprocess.run([kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


class KubePlay:
    def __init__(self, docs: list[dict[str, Any]], workdir: Path) -> None:
        self.docs = docs
        self.workdir = workdir
        self.network = f"switchyard-kube-{os.getpid()}"
        self.played: list[Path] = []
        self.gateway_port = 0

    def config_maps(self) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == "ConfigMap"]

    def set_setting(self, service: str, name: str, value: str) -> None:
        """Change a setting in the service's own ConfigMap (switchyard-<service>-<hash>)."""
        (config,) = [c for c in self.config_maps() if c["metadata"]["name"].startswith(f"switchyard-{service}-")]
        config["data"][name] = value

    def play(self, service: str) -> str:
        """Start one Deployment's pod; its IP on the test network."""
        (deployment,) = [d for d in self.docs if d["kind"] == "Deployment" and d["metadata"]["name"] == service]
        deployment["spec"]["replicas"] = 1
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for port in container.get("ports", []):
                port["hostPort"] = free_port()
                if service == "gateway":
                    self.gateway_port = port["hostPort"]
        docs = [*self.config_maps(), deployment]
        if service == ORDER[0]:
            docs += [d for d in self.docs if d["kind"] == "PersistentVolumeClaim"]
        path = self.workdir / f"{service}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        self.played.append(path)
        podman("kube", "play", "--network", self.network, str(path), timeout=300)
        return self.ip(service)

    def container(self, service: str) -> str:
        return f"{service}-pod-0-{service}"

    def ip(self, service: str) -> str:
        field = '{{(index .NetworkSettings.Networks "' + self.network + '").IPAddress}}'
        return podman("inspect", "--format", field, self.container(service)).stdout.strip()

    def healthy(self, service: str) -> bool:
        """The images' health check, run in the container: kube play drops an image's HEALTHCHECK
        and cannot run the manifests' grpc probes (an httpGet one it turns into curl, which the
        images do not carry)."""
        check = ["python", "/usr/local/lib/switchyard/healthcheck.py", *HEALTH_CHECKS[service]]
        return podman("exec", self.container(service), *check, check=False).returncode == 0

    def down(self) -> None:
        for path in reversed(self.played):
            podman("kube", "down", str(path), timeout=120, check=False)
        podman("volume", "rm", "--force", MODELS_PVC, check=False)
        podman("network", "rm", "--force", self.network, check=False)


@pytest.fixture(scope="module")
def kube(images: dict[str, Built], models_volume: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubePlay]:
    play = KubePlay(render(), tmp_path_factory.mktemp("kube"))
    podman("network", "create", play.network)
    try:
        yield play
    finally:
        play.down()


def test_the_cpu_overlay_serves_under_podman_kube_play(kube: KubePlay, models_volume: Path) -> None:
    start = time.monotonic()
    engine_ip = kube.play("engine-llamacpp")
    # The PVC became a podman volume, mounted read-only at /workspace/models: fill it as an
    # operator fills the claim, with the demo model.
    mountpoint = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", MODELS_PVC).stdout.strip())
    shutil.copy2(models_volume / "switchyard-demo.gguf", mountpoint / "switchyard-demo.gguf")
    kube.set_setting("router", "SWITCHYARD_BACKENDS", f"llamacpp={engine_ip}:50062")
    router_ip = kube.play("router")
    kube.set_setting("gateway", "SWITCHYARD_ROUTER", f"{router_ip}:50051")
    kube.play("gateway")
    for service in ORDER:
        wait_until(functools.partial(kube.healthy, service), 180, f"{service} to pass its health check", 0.5)
    url = f"http://127.0.0.1:{kube.gateway_port}"
    load = {"engine": "llamacpp", "model_path": "switchyard-demo.gguf", "served_model_name": "demo"}
    answer = httpx.post(f"{url}/v1/models/load", json=load, timeout=300)
    assert answer.status_code == 200, answer.text
    client = openai_client(f"{url}/v1", 120)
    completion = client.completions.create(model="demo", prompt="hi", max_tokens=4)
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    seconds = time.monotonic() - start
    FIGURES.append(f"podman kube play (overlay cpu): three pods served a completion {seconds:.0f} s after the first")
    # Nothing in the pods runs as root, and the root filesystems are read-only, as written.
    for service in ORDER:
        assert podman("exec", kube.container(service), "id", "-u").stdout.strip() == "10001"
        touched = podman("exec", kube.container(service), "touch", "/opt/x", check=False)
        assert touched.returncode != 0 and "Read-only file system" in touched.stderr


def test_kube_down_leaves_nothing(kube: KubePlay) -> None:
    kube.down()
    pods = podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
    assert not [p for p in pods if p.endswith("-pod-0") and p.removesuffix("-pod-0") in ORDER], pods
    assert podman("volume", "exists", MODELS_PVC, check=False).returncode != 0
