"""Settings of the vLLM engine service (flags or SWITCHYARD_* variables)."""

from __future__ import annotations

from pydantic import Field

from switchyard.runtime.settings import EngineSettings


class VllmSettings(EngineSettings):
    port: int = Field(50061, ge=0, le=65535, description="gRPC port")
    cpu_kv_cache_bytes: int = Field(
        512 * 1024**2, gt=0, description="KV-cache size on CPU when a load does not give one"
    )
    load_model: str | None = Field(None, description="model folder to load at start (path in a root)")
    default_dtype: str = Field(
        "bfloat16", description="dtype of a load that gives none (at start, on demand); the seed's bfloat16"
    )
