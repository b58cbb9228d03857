"""Session fixtures: the demo model, and a model root laid out for the path-confinement tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.demo_model import make_demo_model
from tests.helpers import REPORTS, ROOT, close_openai_clients
from tests.openai_conformance import install as install_conformance_checks

DEMO_NAME = "switchyard-demo"
SECOND = "switchyard-demo-b"  # a second demo model: another seed, other weights


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    close_openai_clients()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, lines in REPORTS.items():
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The project's demo model (made once, reused by the run command too)."""
    models = ROOT / "models"
    subprocess.run([sys.executable, "-m", "switchyard.demo_model", "--out", str(models)], check=True)
    return models


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    """A model root with the demo model in both forms, a non-model, and a symlink out of the root."""
    base = tmp_path_factory.mktemp("roots")
    root = base / "models"
    root.mkdir()
    shutil.copy2(demo_model_dir / f"{DEMO_NAME}.gguf", root / f"{DEMO_NAME}.gguf")
    shutil.copytree(demo_model_dir / DEMO_NAME, root / DEMO_NAME)
    (root / "not-a-model.gguf").write_text("this is not a GGUF file\n")
    outside = base / "outside"
    outside.mkdir()
    shutil.copy2(demo_model_dir / f"{DEMO_NAME}.gguf", outside / "secret.gguf")
    (root / "escape.gguf").symlink_to(outside / "secret.gguf")
    return root


@pytest.fixture(scope="session")
def two_model_root(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    """The demo model, a second one (seed 1) and a corrupt model of each kind."""
    root = tmp_path_factory.mktemp("two-models")
    shutil.copy2(demo_model_dir / f"{DEMO_NAME}.gguf", root / f"{DEMO_NAME}.gguf")
    shutil.copytree(demo_model_dir / DEMO_NAME, root / DEMO_NAME)
    make_demo_model(root, seed=1, name=SECOND)
    (root / "broken.gguf").write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    broken = root / "broken"
    shutil.copytree(demo_model_dir / DEMO_NAME, broken)
    for weights in broken.glob("*.safetensors"):
        weights.write_bytes(b"\x00" * 64)
    return root


@pytest.fixture(scope="session", autouse=True)
def openai_conformance() -> Iterator[None]:
    """Every OpenAI answer any test reads is checked against the openai SDK's types
    (tests/openai_conformance.py)."""
    with pytest.MonkeyPatch.context() as patch:
        install_conformance_checks(patch)
        yield
