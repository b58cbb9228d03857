"""Settings of the llama.cpp engine service (flags or SWITCHYARD_* variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from switchyard.runtime.settings import EngineSettings


class LlamacppSettings(EngineSettings):
    port: int = Field(50062, ge=0, le=65535, description="gRPC port")
    llama_server: Path | None = Field(
        None, description="llama-server binary to use (default: build or reuse the cached one)"
    )
    ctx_size: int = Field(8192, ge=16, description="default context size (all slots share it)")
    parallel: int = Field(8, ge=1, le=256, description="default parallel slots")
    startup_timeout_s: float = Field(300.0, gt=0, description="how long a model may take to load")
    stop_grace_s: float = Field(5.0, ge=0, description="SIGTERM to SIGKILL delay for the child")
    load_model: str | None = Field(None, description="model to load at start (path in a root)")
