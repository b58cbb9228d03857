"""Settings of the router service (flags or SWITCHYARD_* variables)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from services.router.picker import EnginePolicy
from switchyard.engines import ENGINES_BY_NAME
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
    engine_order: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["llamacpp", "vllm"],
        description=(
            "comma-separated engines: which one serves a request that names no engine when several serve "
            "its model (the first in the best state: loaded, then loading, then loadable)"
        ),
    )
    engine_failover: bool = Field(
        False,
        description=(
            "when the engine the order prefers for a model is unreachable, serve the request from the next "
            "one (off: 503, so an answer never depends on which engine happens to be up)"
        ),
    )
    resolve_interval_s: float = Field(5.0, gt=0, description="how often DNS backends are re-resolved")
    retry_backoff_max_s: float = Field(5.0, gt=0, description="longest wait between reconnects to a backend")

    @field_validator("backends", "engine_order", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("engine_order")
    @classmethod
    def _engines(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in ENGINES_BY_NAME]
        if unknown or len(set(value)) != len(value):
            raise ValueError(f"engine_order lists each of {', '.join(ENGINES_BY_NAME)} at most once, got {value}")
        return value

    def engine_policy(self) -> EnginePolicy:
        return EnginePolicy(tuple(ENGINES_BY_NAME[name] for name in self.engine_order), self.engine_failover)
