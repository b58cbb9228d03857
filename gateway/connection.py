"""The gateway's one connection to the router, and the dependencies routes take it by."""

from __future__ import annotations

from fastapi import Request

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
