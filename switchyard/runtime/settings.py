"""Settings common to every gRPC service, read from flags and ``SWITCHYARD_*`` variables.

Each service subclasses ``ServiceSettings`` with its own fields and default port; flags win over
environment variables, which win over defaults (pydantic-settings' CLI source does the parsing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, CliApp, NoDecode, SettingsConfigDict

S = TypeVar("S", bound="ServiceSettings")


class ServiceSettings(BaseSettings):
    """Fields every service has."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        extra="ignore",
    )

    host: str = Field("127.0.0.1", description="address the gRPC server binds")
    port: int = Field(0, ge=0, le=65535, description="gRPC port (0 picks a free one)")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus /metrics port (unset: no endpoint)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field("text", description="json for structured logs")
    shutdown_grace_s: float = Field(10.0, ge=0, description="on SIGTERM, how long in-flight streams may finish")
    service_restarts: int = Field(0, ge=0, description="times a supervisor restarted this service (set by up)")
    otlp_traces_endpoint: str | None = Field(
        None, description="OTLP/gRPC collector for traces, e.g. http://otel:4317 (the tracing extra; unset: off)"
    )
    service_token_file: Path | None = Field(
        None, description="file with the token our services present to each other (unset: gRPC calls need none)"
    )


class EngineSettings(ServiceSettings):
    """Fields every engine service has."""

    model_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path("models")],
        description="folders models may be loaded from (comma-separated in the environment)",
    )
    status_poll_s: float = Field(0.5, gt=0, description="how often each model's occupancy figures are refreshed")
    max_models: int = Field(1, ge=1, le=64, description="models held at once; the least recently used idle goes")
    autoload: bool = Field(True, description="load a model under the roots when a request names it")
    max_in_flight: int = Field(
        256, ge=0, le=1_000_000, description="requests a model may have running or waiting; more get 429 (0: no bound)"
    )
    load_wait_s: float = Field(600.0, gt=0, description="how long a request waits for its model to load")
    evict_wait_s: float = Field(30.0, ge=0, description="how long a load on demand waits for a busy model to go idle")
    keep_alive_s: float = Field(0.0, ge=0, description="unload a model idle this long (0: never); a load may override")
    stop_timeout_s: float = Field(30.0, gt=0, description="how long a model may take to stop before it is killed")
    restart_on_crash: bool = Field(True, description="restart a model whose engine died, with the same options")
    max_restarts: int = Field(5, ge=0, description="restarts allowed per restart window")
    restart_window_s: float = Field(300.0, gt=0, description="window for max_restarts")
    restart_backoff_s: float = Field(1.0, ge=0, description="delay before the first restart (doubles each time)")
    autopull: bool = Field(False, description="pull a hub model (ORG/REPO[:QUANT]) a request names, then load it")
    models_file: Path | None = Field(
        None, description="YAML presets per model name: engine, source, load options, aliases, keep-alive, preload"
    )
    models_file_poll_s: float = Field(2.0, gt=0, description="how often the models file is checked for changes")
    hf_token_file: Path | None = Field(None, description="file holding the hub token (default: HF_TOKEN)")
    stream_interval: int = Field(
        1,
        ge=1,
        le=1024,
        description="tokens per streamed message after the first (1: each token at once; more: less CPU per token)",
    )

    @field_validator("model_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(",") if part]
        return value


def parse_settings(cls: type[S], argv: list[str] | None = None) -> S:
    """Build settings from flags (``argv``), then environment, then defaults."""
    try:
        return CliApp.run(cls, cli_args=argv)
    except ValidationError as exc:
        raise SystemExit(f"invalid settings: {exc}") from exc
