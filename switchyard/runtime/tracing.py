"""Optional OpenTelemetry tracing (``pip install switchyard[tracing]``), off by default.

With ``otlp_traces_endpoint`` set, a service sends its spans there over OTLP/gRPC: the gateway
one per HTTP request (FastAPI's instrumentation) and one per call to the router, the router and
the engines one per call they serve and make (gRPC's aio instrumentation). The trace context
travels in gRPC metadata, so one trace is the tree gateway -> router -> engine; the vLLM engine
also hands it to vLLM, whose own spans join it. Instrumenting patches grpc.aio's server and
channel constructors, so it runs before any is made.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)
_provider: Any = None  # the TracerProvider once tracing is on


def enabled() -> bool:
    return _provider is not None


def setup(service: str, endpoint: str | None) -> None:
    """Send this service's spans to ``endpoint`` (unset: tracing stays off, nothing imported)."""
    if not endpoint:
        return
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        needs = f"otlp_traces_endpoint needs the tracing extra: pip install 'switchyard[tracing]' ({exc})"
        raise SystemExit(needs) from None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    instrument(provider)
    logger.info("tracing to %s", endpoint)


def instrument(provider: Any) -> None:
    """Trace every grpc.aio server and channel made from now on, with ``provider``."""
    global _provider
    from opentelemetry import trace
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer

    trace.set_tracer_provider(provider)
    GrpcAioInstrumentorServer().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _provider = provider


def uninstrument() -> None:
    """Undo ``instrument`` (tests)."""
    global _provider
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer

    GrpcAioInstrumentorServer().uninstrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().uninstrument()  # type: ignore[no-untyped-call]
    _provider = None


def instrument_app(app: Any) -> None:
    """A span per HTTP request of the gateway's app, when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="health,ready,metrics")


def trace_headers() -> dict[str, str] | None:
    """The current trace context as W3C headers (for vLLM's own spans), or None when off."""
    if _provider is None:
        return None
    from opentelemetry.propagate import inject

    headers: dict[str, str] = {}
    inject(headers)
    return headers or None
