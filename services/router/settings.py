"""Settings of the router service (flags or SWITCHYARD_* variables)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from switchyard.runtime.settings import ServiceSettings


class RouterSettings(ServiceSettings):
    port: int = Field(50051, ge=0, le=65535, description="gRPC port")
    backends: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "comma-separated ENGINE=ADDRESS entries: llamacpp=127.0.0.1:50062 for one backend, "
            "vllm=dns:engine-vllm:50061 for every address a DNS name resolves to (a headless Service)"
        ),
    )
    resolve_interval_s: float = Field(5.0, gt=0, description="how often DNS backends are re-resolved")
    retry_backoff_max_s: float = Field(5.0, gt=0, description="longest wait between reconnects to a backend")

    @field_validator("backends", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
