"""Prometheus metrics of the gateway (of every worker process, when there are several)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

router = APIRouter()


@router.get("/metrics", summary="Prometheus metrics")
async def prometheus() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # --workers N: add up every worker's files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
