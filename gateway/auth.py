"""Optional API keys: ``Authorization: Bearer KEY``, or ``x-api-key: KEY`` as Anthropic's clients
send it (on every route). With keys configured every API route
needs one, and loading or unloading models needs an admin key; so do ``/metrics`` and the API
docs, unless ``open_metrics_and_docs`` (probes, ``/health`` and ``/ready``, never do).

Loading is more than the load route: a request naming a model that is not loaded would load it
on demand (evicting another), and an embeddings request could load a model for embedding. A
user key's requests are marked ``loaded_only`` so the engines serve only what is loaded,
unless ``users_load_on_demand`` grants users that power."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from gateway.errors import ApiError
from gateway.settings import GatewaySettings


def _sent_key(request: Request) -> str | None:
    """The key the client sent: a bearer token, else ``x-api-key``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key", "").strip() or None


def _known(token: str, keys: list[str]) -> bool:
    return any(hmac.compare_digest(token.encode(), key.encode()) for key in keys)


def check_key(request: Request, admin: bool) -> None:
    settings: GatewaySettings = request.app.state.settings
    if not settings.auth_enabled:
        return
    token = _sent_key(request)
    if token is None or not _known(token, settings.api_keys + settings.admin_keys):
        raise ApiError(401, "missing or invalid API key (Authorization: Bearer KEY, or x-api-key: KEY)")
    is_admin = _known(token, settings.admin_keys)
    if admin and not is_admin:
        raise ApiError(403, "loading and unloading models needs an admin key")
    request.state.loaded_only = not (is_admin or settings.users_load_on_demand)
    request.state.owner = hashlib.sha256(token.encode()).hexdigest()


def owner(request: Request) -> str:
    """Who a stored object belongs to: a digest of the caller's key (everyone is one caller
    when no keys are configured)."""
    return str(getattr(request.state, "owner", ""))


def loaded_only(request: Request) -> bool:
    """Whether this caller's requests must be served by models already loaded."""
    return bool(getattr(request.state, "loaded_only", False))


async def require_key(request: Request) -> None:
    check_key(request, admin=False)


async def require_admin(request: Request) -> None:
    check_key(request, admin=True)


async def require_key_unless_open(request: Request) -> None:
    """For /metrics and the docs: what they tell (traffic, every route) is not for anyone."""
    settings: GatewaySettings = request.app.state.settings
    if not settings.open_metrics_and_docs:
        check_key(request, admin=False)
