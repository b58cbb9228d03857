"""Settings of the gateway (flags or SWITCHYARD_* variables)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from switchyard.runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (/metrics is served here too)")
    router: str = Field("127.0.0.1:50051", description="router gRPC address")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated keys for Authorization: Bearer (unset: no auth)"
    )
    admin_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="keys that may also load and unload models"
    )
    users_load_on_demand: bool = Field(
        False,
        description=(
            "with API keys set, a user key's request naming a model that is not loaded loads it on demand "
            "(evicting an idle one); off: only admin keys' requests do, a user's get 403"
        ),
    )
    max_request_bytes: int = Field(1024 * 1024, gt=0, description="largest request body accepted (413 above)")
    request_timeout_s: float = Field(600.0, gt=0, description="deadline of a generation request")
    load_timeout_s: float = Field(1800.0, gt=0, description="deadline of a model load")
    unload_timeout_s: float = Field(120.0, gt=0, description="deadline of a model unload")
    pull_timeout_s: float = Field(86400.0, gt=0, description="deadline of a model pull from the hub")
    workers: int = Field(
        1, ge=1, le=64, description="gateway processes sharing the port (more than one core for HTTP and JSON)"
    )
    stream_keepalive_s: float = Field(
        10.0, gt=0, description="a stream with no output yet (a model loading) sends an SSE comment this often"
    )
    max_concurrent_per_key: int = Field(
        0, ge=0, description="requests one API key may have at once, more get 429 (0: no bound; no keys: one budget)"
    )
    open_metrics_and_docs: bool = Field(
        False, description="with API keys set, serve /metrics and the API docs without a key too"
    )
    responses_store_items: int = Field(
        1000, ge=0, description="stored responses (/v1/responses) kept per gateway process, oldest dropped (0: none)"
    )
    responses_store_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="bytes of stored responses and their conversations, oldest dropped"
    )
    responses_store_age_s: float = Field(3600.0, gt=0, description="how long a stored response is kept")
    ready_requires_model: bool = Field(
        True,
        description="GET /ready is 503 until some engine has a model loaded (off: a router that answers is enough)",
    )

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys or self.admin_keys)
