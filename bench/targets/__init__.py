"""Targets: the servers a benchmark drives, behind one small async interface.

A target is written on the command line as ``[NAME=]KIND:ADDRESS[,KEY=VALUE...]``:

- ``grpc:HOST:PORT[,engine=vllm|llamacpp][,model=NAME][,json=object|SCHEMA_FILE]``:
  switchyard's ``Inference/Generate`` on an engine service or the router; ``json`` decodes
  under a JSON object or a schema (the cost of constrained decoding).
- ``openai:BASE_URL[,model=NAME][,KEY=VALUE...]``: streaming ``/v1/completions`` of an
  OpenAI-compatible server (our gateway, ``vllm serve``, llama-server); other keys are sent as
  extra JSON fields (a value that parses as JSON is sent parsed), e.g. ``engine=vllm``.
- ``chat:``, ``responses:``, ``anthropic:BASE_URL`` (options as ``openai``): the gateway's
  streaming ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/messages`` with the prompt as
  one user message, to compare the gateway's cost per token across its APIs.
- ``llama-server:BASE_URL``: llama.cpp's native streaming ``/completion``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bench.measure import RequestResult

KINDS = ("grpc", "openai", "chat", "responses", "anthropic", "llama-server")
HTTP_APIS = ("openai", "chat", "responses", "anthropic")  # any option is sent as a JSON field


class Target(Protocol):
    """A server to benchmark. ``stream`` sends one greedy, ignore_eos request of ``max_tokens``."""

    name: str

    async def stream(self, prompt: str, max_tokens: int) -> RequestResult: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str
    address: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.options.items())
        return f"{self.name}={self.kind}:{self.address}{extra}"


def parse_target(text: str, index: int = 0) -> TargetSpec:
    """Parse ``[NAME=]KIND:ADDRESS[,KEY=VALUE...]``; the name defaults to ``KIND`` or ``KIND-INDEX``."""
    head, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"target {text!r}: expected [NAME=]KIND:ADDRESS")
    name, _, kind = head.rpartition("=")
    if kind not in KINDS:
        raise ValueError(f"target {text!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    address, *pairs = rest.split(",")
    if not address:
        raise ValueError(f"target {text!r}: no address")
    options: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ValueError(f"target {text!r}: option {pair!r} is not KEY=VALUE")
        options[key] = value
    allowed = {"engine", "model", "json"} if kind == "grpc" else {"engine", "model"}
    if kind not in HTTP_APIS and set(options) - allowed:
        raise ValueError(f"target {text!r}: {kind} takes only the options {', '.join(sorted(allowed))}")
    if kind == "grpc" and options.get("engine", "vllm") not in ("vllm", "llamacpp"):
        raise ValueError(f"target {text!r}: engine must be vllm or llamacpp")
    return TargetSpec(name or (kind if index == 0 else f"{kind}-{index}"), kind, address, options)


def open_target(spec: TargetSpec, timeout: float) -> Target:
    """A client for ``spec``; ``timeout`` bounds each request in seconds."""
    if spec.kind == "grpc":
        from bench.targets.grpc_target import GrpcTarget

        options = spec.options
        return GrpcTarget(
            spec.name, spec.address, options.get("engine"), options.get("model"), timeout, options.get("json")
        )
    from bench.targets.http import LlamaServerTarget, OpenAITarget

    if spec.kind in HTTP_APIS:
        return OpenAITarget(spec.name, spec.address, spec.options, timeout, api=spec.kind)
    return LlamaServerTarget(spec.name, spec.address, timeout)
