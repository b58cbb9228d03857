"""Settings load from defaults, SWITCHYARD_* variables and flags, flags winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.engine_llamacpp.settings import LlamacppSettings
from switchyard.runtime.settings import parse_settings


def test_defaults_match_the_documented_ports() -> None:
    settings = parse_settings(LlamacppSettings, [])
    assert settings.port == 50062
    assert settings.model_roots == [Path("models")]


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_PORT", "6000")
    monkeypatch.setenv("SWITCHYARD_MODEL_ROOTS", "/a,/b")
    monkeypatch.setenv("SWITCHYARD_RESTART_ON_CRASH", "false")
    settings = parse_settings(LlamacppSettings, [])
    assert settings.port == 6000
    assert settings.model_roots == [Path("/a"), Path("/b")]
    assert settings.restart_on_crash is False


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_PORT", "6000")
    settings = parse_settings(LlamacppSettings, ["--port", "7000", "--model-roots", "/x,/y", "--no-restart-on-crash"])
    assert settings.port == 7000
    assert settings.model_roots == [Path("/x"), Path("/y")]
    assert settings.restart_on_crash is False


def test_bad_values_are_rejected() -> None:
    with pytest.raises(SystemExit):
        parse_settings(LlamacppSettings, ["--port", "99999"])
