"""The router's backends: a channel and a live status per engine replica.

A ``WatchStatus`` stream to each backend keeps its state, model and load current; a backend
whose stream breaks is unreachable until it reconnects. DNS entries (a Kubernetes headless
Service) are re-resolved so replicas can come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from services.router.picker import BackendView
from switchyard.engines import ENGINES_BY_NAME
from switchyard.errors import InvalidArgument
from switchyard.runtime import service_token
from switchyard.v1 import common_pb2, control_pb2, control_pb2_grpc, inference_pb2, inference_pb2_grpc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendSpec:
    """One ``ENGINE=ADDRESS`` setting; ``dns`` means every address the host resolves to."""

    engine: common_pb2.Engine.ValueType
    host: str
    port: int
    dns: bool

    @classmethod
    def parse(cls, text: str) -> BackendSpec:
        engine_name, sep, address = text.partition("=")
        if not sep or engine_name not in ENGINES_BY_NAME:
            raise InvalidArgument(f"backend {text!r} is not ENGINE=ADDRESS with ENGINE vllm or llamacpp")
        dns = address.startswith("dns:")
        host, sep, port = address.removeprefix("dns:").lstrip("/").rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidArgument(f"backend address {address!r} needs HOST:PORT")
        return cls(ENGINES_BY_NAME[engine_name], host, int(port), dns)


GENERATE_METHOD = "/switchyard.v1.Inference/Generate"


@dataclass(eq=False)
class Backend(BackendView):
    channel: grpc.aio.Channel | None = None
    metadata: tuple[tuple[str, str], ...] | None = None  # what each streamed call sends (the token)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @functools.cached_property
    def inference(self) -> inference_pb2_grpc.InferenceAsyncStub:
        assert self.channel is not None
        return inference_pb2_grpc.InferenceStub(self.channel)

    @functools.cached_property
    def control(self) -> control_pb2_grpc.ControlAsyncStub:
        assert self.channel is not None
        return control_pb2_grpc.ControlStub(self.channel)

    @functools.cached_property
    def generate_raw(self) -> grpc.aio.UnaryStreamMultiCallable[inference_pb2.GenerateRequest, bytes]:
        """Generate with its responses left serialized: the router passes them on as they are."""
        assert self.channel is not None
        return self.channel.unary_stream(
            GENERATE_METHOD, request_serializer=inference_pb2.GenerateRequest.SerializeToString
        )


class BackendPool:
    def __init__(
        self,
        specs: list[BackendSpec],
        resolve_interval_s: float,
        backoff_max_s: float,
        on_change: Callable[[Backend], None],
        resolve: Callable[[str, int], Awaitable[set[str]]] | None = None,
        token: str | None = None,
    ) -> None:
        self.token = token  # the service token, sent to every engine
        self.specs = specs
        self.resolve_interval_s = resolve_interval_s
        self.backoff_max_s = backoff_max_s
        self.on_change = on_change
        self.resolve = resolve or resolve_addresses
        self._backends: dict[str, Backend] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._dns_members: dict[BackendSpec, set[str]] = {}

    def backends(self, engine: common_pb2.Engine.ValueType = common_pb2.ENGINE_UNSPECIFIED) -> list[Backend]:
        return [b for b in self._backends.values() if engine in (common_pb2.ENGINE_UNSPECIFIED, b.engine)]

    async def start(self) -> None:
        for spec in self.specs:
            if spec.dns:
                self._tasks.append(asyncio.create_task(self._resolve_loop(spec), name=f"dns {spec.host}"))
            else:
                self._add(spec.engine, f"{spec.host}:{spec.port}")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for address in list(self._backends):
            await self._remove(address)

    def _add(self, engine: common_pb2.Engine.ValueType, address: str) -> None:
        if address in self._backends:
            return
        backend = Backend(
            address=address,
            engine=engine,
            reachable=False,
            status=control_pb2.EngineStatus(engine=engine, backend=address),
            channel=service_token.channel(address, self.token),
            metadata=service_token.call_metadata(self.token),
        )
        backend.task = asyncio.create_task(self._watch(backend), name=f"watch {address}")
        self._backends[address] = backend
        logger.info("backend %s (%s) added", address, engine)

    async def _remove(self, address: str) -> None:
        backend = self._backends.pop(address)
        if backend.task is not None:
            backend.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await backend.task
        if backend.channel is not None:
            await backend.channel.close()
        logger.info("backend %s removed", address)

    async def _watch(self, backend: Backend) -> None:
        """Follow the backend's status; on a broken stream, mark it unreachable and reconnect."""
        backoff = 0.1
        while True:
            try:
                watch = backend.control.WatchStatus(control_pb2.WatchStatusRequest(), metadata=backend.metadata)
                async for event in watch:
                    event.status.backend = backend.address
                    backend.status = event.status
                    backend.known = frozenset(n for m in event.status.models for n in (m.name, *m.aliases))
                    if not backend.reachable:
                        logger.info("backend %s reachable", backend.address)
                    backend.reachable = True
                    backoff = 0.1
                    self.on_change(backend)
                error = "status stream ended"
            except grpc.aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            if backend.reachable:
                logger.warning("backend %s unreachable: %s", backend.address, error)
            backend.reachable = False
            backend.status = control_pb2.EngineStatus(
                engine=backend.engine,
                state=control_pb2.MODEL_STATE_ERROR,
                error=f"backend unreachable: {error}",
                backend=backend.address,
            )
            self.on_change(backend)
            await asyncio.sleep(backoff)  # reconnect back-off
            backoff = min(backoff * 2, self.backoff_max_s)

    async def _resolve_loop(self, spec: BackendSpec) -> None:
        while True:
            await self.resolve_once(spec)
            await asyncio.sleep(self.resolve_interval_s)  # re-resolve interval

    async def resolve_once(self, spec: BackendSpec) -> None:
        """Add a backend for every new address of the name, remove the ones gone."""
        try:
            wanted = await self.resolve(spec.host, spec.port)
        except OSError as exc:
            logger.warning("resolving %s failed: %s; keeping %s", spec.host, exc, self._dns_members.get(spec))
            return
        current = self._dns_members.get(spec, set())
        for address in wanted - current:
            self._add(spec.engine, address)
        for address in current - wanted:
            await self._remove(address)
        self._dns_members[spec] = wanted


async def resolve_addresses(host: str, port: int) -> set[str]:
    """Every ``HOST:PORT`` a name resolves to (IPv6 in brackets)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    hosts = {str(info[4][0]) for info in infos}
    return {f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts}
