"""The fields /v1/completions and /v1/chat/completions share, and how they become Generate
requests (one per choice). Each route's own fields are in its family's ``protocol.py``."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from gateway.errors import ApiError
from gateway.fields import EngineName, Int32, Int64, OpenAIBody, TokenId, engine_kind, ranged
from switchyard.contract import MAX_STOP_STRINGS
from switchyard.v1 import inference_pb2 as pb

MAX_CHOICES = 16  # n, and prompts times n: each choice is one generation


class StreamOptions(BaseModel):
    include_usage: bool = False


class GenerationFields(OpenAIBody):
    """Fields shared by /v1/completions and /v1/chat/completions."""

    model: str | None = None
    engine: EngineName | None = None
    max_tokens: Int32 | None = ranged(None, "tokens to generate at most", minimum=1)
    temperature: float | None = ranged(None, "0 is greedy", minimum=0, maximum=2)
    top_p: float | None = ranged(None, "nucleus sampling", exclusiveMinimum=0, maximum=1)
    top_k: Int32 | None = ranged(None, "0 or -1: off", minimum=-1)
    min_p: float | None = ranged(None, "minimum probability relative to the top token", minimum=0, maximum=1)
    seed: Int64 | None = None
    presence_penalty: float | None = ranged(None, "OpenAI's presence penalty", minimum=-2, maximum=2)
    frequency_penalty: float | None = ranged(None, "OpenAI's frequency penalty", minimum=-2, maximum=2)
    repetition_penalty: float | None = ranged(None, "1 is none", exclusiveMinimum=0, maximum=10)
    logit_bias: dict[TokenId, float] | None = None
    stop: str | list[str] | None = Field(None, description=f"at most {MAX_STOP_STRINGS} non-empty strings")
    stop_token_ids: list[TokenId] | None = None
    ignore_eos: bool = False
    min_tokens: Int32 | None = ranged(None, "tokens to generate at least (vLLM)", minimum=0)
    n: int = Field(1, ge=1, le=MAX_CHOICES, description=f"choices per prompt (at most {MAX_CHOICES})")
    stream: bool = False
    stream_options: StreamOptions | None = None

    @model_validator(mode="after")
    def _stream_options_with_stream(self) -> GenerationFields:
        if self.stream_options is not None and not self.stream:
            raise ApiError(400, "stream_options is only allowed with stream true", "stream_options")
        return self

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def inputs(self) -> list[pb.GenerateRequest]:
        """One request per input (a prompt, a chat), before ``n``: each route's own."""
        raise NotImplementedError

    def choices(self, inputs: list[pb.GenerateRequest]) -> tuple[list[pb.GenerateRequest], list[int]]:
        """One request per choice, n per input, and the input each choice answers. A seed
        makes every choice reproducible and different: choice i gets seed + i."""
        if len(inputs) * self.n > MAX_CHOICES:
            raise ApiError(400, f"at most {MAX_CHOICES} choices (prompts times n) per request", "n")
        requests, prompts = [], []
        for p, base in enumerate(inputs):
            for i in range(self.n):
                request = pb.GenerateRequest()
                request.CopyFrom(base)
                if self.seed is not None and i:
                    request.sampling.seed = (self.seed + i) % 2**63
                requests.append(request)
                prompts.append(p)
        for request in requests:  # admitted together: a group no model can hold is a 400, not a 429 forever
            request.group_size = len(requests)
        return requests, prompts

    def _request(self, max_tokens: int | None, logprobs: int | None) -> pb.GenerateRequest:
        sampling = pb.SamplingParams(logit_bias=self.logit_bias or {})
        for name in ("temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if value is not None:
                setattr(sampling, name, value)
        if self.repetition_penalty is not None:
            sampling.repetition_penalty = self.repetition_penalty
        stopping = pb.StoppingCriteria(
            stop=[self.stop] if isinstance(self.stop, str) else (self.stop or []),
            stop_token_ids=self.stop_token_ids or [],
            ignore_eos=self.ignore_eos,
        )
        if max_tokens is not None:
            stopping.max_tokens = max_tokens
        if self.min_tokens is not None:
            stopping.min_tokens = self.min_tokens
        output = pb.OutputOptions(return_token_ids=logprobs is not None)
        if logprobs is not None:
            output.logprobs = logprobs
        return pb.GenerateRequest(
            engine=engine_kind(self.engine), model=self.model or "", sampling=sampling, stopping=stopping, output=output
        )


def generate_request(
    engine: str | None,
    model: str | None,
    max_tokens: int | None,
    sampling: dict[str, float | int | None],
    stop: list[str] | None = None,
    ignore_eos: bool = False,
) -> pb.GenerateRequest:
    """A Generate request of the APIs over one chat (Responses, Anthropic messages): the named
    sampling fields that are set, and the stopping."""
    request = pb.GenerateRequest(engine=engine_kind(engine), model=model or "")
    for name, value in sampling.items():
        if value is not None:
            setattr(request.sampling, name, value)
    request.stopping.stop.extend(stop or [])
    request.stopping.ignore_eos = ignore_eos
    if max_tokens is not None:
        request.stopping.max_tokens = max_tokens
    return request
