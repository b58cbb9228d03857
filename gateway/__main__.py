"""``python -m gateway``: the HTTP gateway on :8080.

With ``--workers N`` uvicorn runs N gateway processes on the port; each builds its app from
the settings the parent parsed (passed in the environment), and /metrics adds up all of them
(prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import uvicorn
from fastapi import FastAPI

from gateway.app import SETTINGS_ENV, create_app
from gateway.settings import GatewaySettings
from switchyard.runtime import tracing
from switchyard.runtime.logs import configure_logging
from switchyard.runtime.settings import parse_settings


def serve(settings: GatewaySettings, app: FastAPI | str, factory: bool = False, workers: int = 1) -> None:
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        factory=factory,
        workers=workers,
    )


def main() -> None:
    settings = parse_settings(GatewaySettings)
    configure_logging(settings.log_level, settings.log_format, "gateway")
    if settings.workers == 1:
        tracing.setup("switchyard-gateway", settings.otlp_traces_endpoint)
        serve(settings, create_app(settings))
        return
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    ours = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # an operator's own directory is left alone
    if ours:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="switchyard-gateway-")
    try:
        serve(settings, "gateway.app:app_from_environment", factory=True, workers=settings.workers)
    finally:
        if ours:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
