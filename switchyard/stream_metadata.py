"""What a Generate stream says about itself in its initial metadata (gRPC headers, sent
before the first token): the model and the engine that serve it. Engines send it, the
router passes it on with the first message, the gateway labels its answer from it."""

from __future__ import annotations

from collections.abc import Iterable

MODEL_KEY = "switchyard-model"
ENGINE_KEY = "switchyard-engine"


def stream_metadata(model: str, engine: str) -> tuple[tuple[str, str], ...]:
    # Metadata values must be printable ASCII; a model name that is not is left out.
    pairs = [(ENGINE_KEY, engine)]
    if model.isascii() and model.isprintable():
        pairs.append((MODEL_KEY, model))
    return tuple(pairs)


def ours(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[tuple[str, str], ...]:
    """The switchyard pairs of some initial metadata (those a router passes on)."""
    return tuple((k, v) for k, v in (metadata or ()) if k in (MODEL_KEY, ENGINE_KEY) and isinstance(v, str))


def served_model(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    return next((v for k, v in ours(metadata) if k == MODEL_KEY), "")
