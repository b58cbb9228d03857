"""``python -m gateway``: the HTTP gateway on :8080."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from switchyard.runtime.logs import configure_logging
from switchyard.runtime.settings import parse_settings


def main() -> None:
    settings = parse_settings(GatewaySettings)
    configure_logging(settings.log_level, settings.log_format, "gateway")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


if __name__ == "__main__":
    main()
