"""The gateway's one connection to the router, and the dependencies routes take it by: the
connection and the settings themselves, or a family's serving object holding both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from gateway.settings import GatewaySettings
from switchyard.runtime import service_token
from switchyard.v1 import control_pb2_grpc, inference_pb2_grpc


class Router:
    """A channel to the router with its two services' stubs."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.channel = service_token.channel(address, token)
        self.metadata = service_token.call_metadata(token)  # what each streamed call sends
        self.inference: inference_pb2_grpc.InferenceAsyncStub = inference_pb2_grpc.InferenceStub(self.channel)
        self.control: control_pb2_grpc.ControlAsyncStub = control_pb2_grpc.ControlStub(self.channel)


async def router_of(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


async def settings_of(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


Connection = Annotated[Router, Depends(router_of)]
Settings = Annotated[GatewaySettings, Depends(settings_of)]


class Serving:
    """Base of an endpoint family's serving object: what its routes need to answer (the router
    connection, the settings), so that each route is a line or two."""

    def __init__(self, connection: Router, settings: GatewaySettings) -> None:
        self.connection = connection
        self.settings = settings


S = TypeVar("S", bound=Serving)


def serving_of(cls: type[S]) -> Callable[[Request], Awaitable[S]]:
    """The dependency that gives a route its family's serving object (one per request: two
    references, no I/O)."""

    async def build(request: Request) -> S:
        return cls(request.app.state.router, request.app.state.settings)

    return build
