"""switchyard's own contract: ``switchyard.v1.Inference/Generate`` on an engine service or the router."""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from bench.measure import BenchError, Recorder, RequestResult
from switchyard.engines import ENGINES_BY_NAME
from switchyard.runtime.service_token import call_metadata, read_token
from switchyard.v1 import common_pb2, inference_pb2, inference_pb2_grpc


def response_format(json: str | None) -> inference_pb2.ResponseFormat | None:
    """``object``: any JSON object; else a file holding a JSON Schema; None: free text. The
    output must be able to run to any length (an object or a string does), as the bench
    asks for exact lengths."""
    if json is None:
        return None
    if json == "object":
        return inference_pb2.ResponseFormat(json_object=True)
    schema = Path(json).read_text()
    return inference_pb2.ResponseFormat(json_schema=inference_pb2.JsonSchema(name="bench", schema_json=schema))


def generate_request(
    prompt: str,
    max_tokens: int,
    engine: str | None = None,
    model: str | None = None,
    constraint: inference_pb2.ResponseFormat | None = None,
) -> inference_pb2.GenerateRequest:
    """A greedy request for exactly ``max_tokens`` tokens, decoded under ``constraint``."""
    if engine is not None and engine not in ENGINES_BY_NAME:
        raise ValueError(f"engine {engine!r} is not one of {', '.join(ENGINES_BY_NAME)}")
    return inference_pb2.GenerateRequest(
        response_format=constraint,
        prompt=prompt,
        engine=ENGINES_BY_NAME[engine] if engine else common_pb2.ENGINE_UNSPECIFIED,
        model=model or "",
        sampling=inference_pb2.SamplingParams(temperature=0.0),
        stopping=inference_pb2.StoppingCriteria(max_tokens=max_tokens, ignore_eos=True),
    )


class GrpcTarget:
    def __init__(
        self, name: str, address: str, engine: str | None, model: str | None, timeout: float, json: str | None = None
    ) -> None:
        generate_request("", 1, engine, model)  # checks the engine name now, not at the first request
        self.name = name
        self.engine = engine
        self.model = model
        self.constraint = response_format(json)
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = inference_pb2_grpc.InferenceStub(self._channel)
        # A stack whose services check a token (SWITCHYARD_SERVICE_TOKEN_FILE, as they read it).
        token_file = os.environ.get("SWITCHYARD_SERVICE_TOKEN_FILE")
        self._metadata = call_metadata(read_token(Path(token_file) if token_file else None))

    async def stream(self, prompt: str, max_tokens: int) -> RequestResult:
        request = generate_request(prompt, max_tokens, self.engine, self.model, self.constraint)
        recorder = Recorder()
        tokens: int | None = None
        try:
            async for response in self._stub.Generate(request, timeout=self.timeout, metadata=self._metadata):
                if response.HasField("finished"):
                    tokens = response.finished.usage.completion_tokens
                elif response.delta.text:
                    recorder.chunk()
        except grpc.aio.AioRpcError as error:
            raise BenchError(f"{self.name}: Generate failed: {error.code().name}: {error.details()}") from error
        if tokens is None:
            raise BenchError(f"{self.name}: the Generate stream ended without a Finished message")
        return recorder.finish(tokens)

    async def aclose(self) -> None:
        await self._channel.close()
