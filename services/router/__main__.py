"""``python -m services.router``: the router service."""

from __future__ import annotations

import asyncio

from services.router.backends import Backend, BackendPool, BackendSpec
from services.router.servicer import RouterServicer, add_to_server
from services.router.settings import RouterSettings
from switchyard.contract import SERVICE_NAMES
from switchyard.runtime import tracing
from switchyard.runtime.logs import configure_logging
from switchyard.runtime.loop import run
from switchyard.runtime.server import GrpcService
from switchyard.runtime.settings import parse_settings
from switchyard.v1 import control_pb2


async def serve(settings: RouterSettings) -> None:
    tracing.setup("switchyard-router", settings.otlp_traces_endpoint)  # before any server or channel
    service = GrpcService(settings, "router")
    specs = [BackendSpec.parse(entry) for entry in settings.backends]
    servicer: RouterServicer | None = None
    health_updates: set[asyncio.Task[None]] = set()

    def on_change(backend: Backend) -> None:
        assert servicer is not None
        servicer.publish(backend)
        serving = any(b.reachable and b.status.state == control_pb2.MODEL_STATE_LOADED for b in pool.backends())
        task = asyncio.get_running_loop().create_task(service.set_serving(SERVICE_NAMES[0], serving))
        health_updates.add(task)
        task.add_done_callback(health_updates.discard)

    pool = BackendPool(specs, settings.resolve_interval_s, settings.retry_backoff_max_s, on_change, token=service.token)
    servicer = RouterServicer(pool, policy=settings.engine_policy())
    add_to_server(servicer, service.server)
    service.add_services(SERVICE_NAMES)
    await service.set_serving(SERVICE_NAMES[0], False)
    await pool.start()
    await service.run(on_shutdown=pool.close)


def main() -> None:
    settings = parse_settings(RouterSettings)
    configure_logging(settings.log_level, settings.log_format, "router")
    if not settings.backends:
        raise SystemExit("no backends: set --backends llamacpp=HOST:PORT,vllm=HOST:PORT")
    run(serve(settings))


if __name__ == "__main__":
    main()
