"""Request models of the HTTP API and their conversion to the gRPC contract.

OpenAI's field names and the seed's (``engine``, ``model_path`` and the vLLM load options)
are kept as they are. Validation of value ranges is left to the engines, so that a client gets
the same message over HTTP and gRPC; these models check shapes and types.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from gateway.chat import ChatMessage, NamedToolChoice, ResponseFormat, ToolDef, chat_input
from gateway.errors import ApiError
from gateway.json_limits import check_json
from gateway.openai_fields import CHAT_FIELDS, COMPLETION_FIELDS, EMBEDDING_FIELDS, check_extras
from switchyard import request_id
from switchyard.engines import ENGINES_BY_NAME
from switchyard.hub_names import default_engine
from switchyard.v1 import common_pb2, control_pb2
from switchyard.v1 import inference_pb2 as pb

EngineName = Literal["vllm", "llamacpp"]
MAX_CHOICES = 16  # n, and prompts times n: each choice is one generation
# Integer ranges of the proto fields, so an out-of-range number is a 422, not a failed encode.
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
TokenId = Annotated[int, Field(ge=0, le=2**32 - 1)]
Prompt = Annotated[str, WithJsonSchema({"type": "string", "minLength": 1})]
TokenPrompt = Annotated[list[TokenId], WithJsonSchema({"type": "array", "items": {"type": "integer"}, "minItems": 1})]


def ranged(default: Any, description: str, **bounds: float) -> Any:
    """A field whose valid range is documented in the schema (``minimum``, ``maximum``,
    ``exclusiveMinimum``) but checked by the engines, so HTTP and gRPC clients get one message."""
    return Field(default, description=description, json_schema_extra=bounds)  # type: ignore[arg-type]


def engine_kind(name: str | None) -> common_pb2.Engine.ValueType:
    """The enum for an optional engine name (absent: any engine)."""
    return ENGINES_BY_NAME[name] if name else common_pb2.ENGINE_UNSPECIFIED


# OpenAI's values. An ABORTED generation (its model unloaded or switched under it) has none:
# the gateway answers it as an error (gateway.generation).
FINISH_REASONS = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
}


class RequestBody(BaseModel):
    """Base of every request body: the raw JSON is checked once (gateway.json_limits)."""

    @model_validator(mode="before")
    @classmethod
    def _check_json(cls, data: Any) -> Any:
        check_json(data)
        return data


class StreamOptions(BaseModel):
    include_usage: bool = False


class GenerationFields(RequestBody):
    """Fields shared by /v1/completions and /v1/chat/completions. Fields not declared are
    kept, to be refused or logged by ``gateway.openai_fields``."""

    model_config = ConfigDict(extra="allow")
    openai_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_silent_drops(self) -> Self:
        check_extras(self.model_extra, self.openai_fields)
        return self

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
    stop: str | list[str] | None = Field(None, description="at most 16 non-empty strings")
    stop_token_ids: list[TokenId] | None = None
    ignore_eos: bool = False
    min_tokens: Int32 | None = ranged(None, "tokens to generate at least (vLLM)", minimum=0)
    n: int = Field(1, ge=1, le=MAX_CHOICES, description=f"choices per prompt (at most {MAX_CHOICES})")
    stream: bool = False
    stream_options: StreamOptions | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

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


class CompletionRequest(GenerationFields):
    """POST /v1/completions: OpenAI's completion request plus the seed's ``engine``.

    The seed's defaults stay: 128 tokens, temperature 0.7, top_p 0.95.
    """

    openai_fields = COMPLETION_FIELDS

    prompt: Prompt | list[Prompt] | TokenPrompt | list[TokenPrompt] = Field(
        description="a prompt, a list of prompts, a token list or a list of token lists: one choice each (times n)"
    )
    max_tokens: Int32 | None = 128
    temperature: float | None = 0.7
    top_p: float | None = 0.95
    logprobs: Int32 | None = ranged(None, "most likely alternatives per token", minimum=0, maximum=20)
    echo: bool = Field(False, description="each choice's text starts with its prompt")
    best_of: int | None = Field(None, description="only as many as n: switchyard returns every choice it generates")

    @model_validator(mode="after")
    def _supported(self) -> Self:
        if self.best_of is not None and self.best_of != self.n:
            raise ApiError(400, "best_of other than n is not supported: every choice generated is returned", "best_of")
        if self.echo and self.logprobs is not None:
            raise ApiError(400, "echo with logprobs is not supported (no prompt logprobs)", "echo")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ApiError(400, "prompt is an empty list", "prompt")
        return self

    def prompts(self) -> list[str | list[int]]:
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if prompt and isinstance(prompt[0], int):
            return [[int(t) for t in prompt]]  # one token prompt
        return [p for p in prompt if isinstance(p, str | list)]

    def inputs(self) -> list[pb.GenerateRequest]:
        """One request per prompt."""
        out = []
        for prompt in self.prompts():
            request = self._request(self.max_tokens, self.logprobs)
            if isinstance(prompt, str):
                request.prompt = prompt
            else:
                request.prompt_token_ids.ids.extend(prompt)
            out.append(request)
        return out


class ChatCompletionRequest(GenerationFields):
    """POST /v1/chat/completions: rendered by the engine with the model's own template."""

    openai_fields = CHAT_FIELDS

    messages: list[ChatMessage]
    max_completion_tokens: Int32 | None = ranged(None, "tokens to generate at most", minimum=1)
    logprobs: bool = False
    top_logprobs: Int32 | None = ranged(None, "most likely alternatives per token", minimum=0, maximum=20)
    tools: list[ToolDef] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    chat_template_kwargs: dict[str, Any] | None = Field(
        None, description="more variables for the model's chat template, e.g. enable_thinking (vLLM's extension)"
    )
    add_generation_prompt: bool = True

    def inputs(self) -> list[pb.GenerateRequest]:
        top = (self.top_logprobs or 0) if self.logprobs else None
        request = self._request(self.max_completion_tokens or self.max_tokens, top)
        request.chat.CopyFrom(
            chat_input(
                self.messages,
                self.add_generation_prompt,
                self.tools,
                self.tool_choice,
                self.parallel_tool_calls,
                self.chat_template_kwargs,
            )
        )
        response_format = self.response_format.to_proto() if self.response_format is not None else None
        if response_format is not None:
            request.response_format.CopyFrom(response_format)
        return [request]


VLLM_FIELDS = (
    "dtype",
    "gpu_memory_utilization",
    "max_model_len",
    "quantization",
    "tensor_parallel_size",
    "kv_cache_memory_bytes",
    "enforce_eager",
    "max_num_seqs",
)
LLAMACPP_FIELDS = ("n_gpu_layers", "ctx_size", "parallel", "cache_type_k", "cache_type_v", "threads")
FLASH_MODES = {
    "auto": control_pb2.FLASH_ATTENTION_AUTO,
    "on": control_pb2.FLASH_ATTENTION_ON,
    "off": control_pb2.FLASH_ATTENTION_OFF,
}


POOLINGS = {"mean": control_pb2.POOLING_MEAN, "cls": control_pb2.POOLING_CLS, "last": control_pb2.POOLING_LAST}


class LoadRequest(RequestBody):
    """POST /v1/models/load: the seed's body, plus typed options for each engine."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_path: str
    engine: EngineName
    served_model_name: str | None = None
    aliases: list[str] = Field(default_factory=list, max_length=16, description="more names the model answers to")
    keep_alive_s: float | None = Field(
        None, ge=0, description="unload after this many idle seconds (0: never; unset: the engine's default)"
    )
    task: Literal["generate", "embed"] = Field("generate", description="embed: serve /v1/embeddings only")
    pooling: Literal["mean", "cls", "last"] | None = Field(None, description="with task embed (default mean)")
    # vLLM (the seed's three first, with its defaults applied by the engine)
    dtype: str | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = Field(None, ge=1, le=2**32 - 1)
    quantization: str | None = None
    tensor_parallel_size: int | None = Field(None, ge=1, le=2**32 - 1)
    kv_cache_memory_bytes: int | None = Field(None, ge=1, le=2**64 - 1)
    enforce_eager: bool | None = None
    trust_remote_code: bool = False
    max_num_seqs: int | None = Field(None, ge=1, le=2**32 - 1)
    # llama.cpp
    n_gpu_layers: int | None = Field(None, ge=-1, le=2**31 - 1)
    ctx_size: int | None = Field(None, ge=1, le=2**32 - 1)
    parallel: int | None = Field(None, ge=1, le=2**32 - 1)
    flash_attn: Literal["auto", "on", "off"] | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    threads: int | None = Field(None, ge=1, le=2**32 - 1)

    @model_validator(mode="after")
    def _options_of_its_engine(self) -> LoadRequest:
        """Options given that belong to the other engine are refused, naming them."""
        vllm = self.engine == "vllm"
        other = [*LLAMACPP_FIELDS, "flash_attn"] if vllm else [*VLLM_FIELDS, "trust_remote_code"]
        misplaced = [name for name in other if getattr(self, name) not in (None, False)]
        if misplaced:
            raise ApiError(400, f"options {', '.join(misplaced)} do not apply to {self.engine}", misplaced[0])
        return self

    def to_proto(self) -> control_pb2.LoadModelRequest:
        request = control_pb2.LoadModelRequest(
            engine=engine_kind(self.engine),
            model_path=self.model_path,
            served_model_name=self.served_model_name or "",
            aliases=self.aliases,
        )
        if self.keep_alive_s is not None:
            request.keep_alive_s = self.keep_alive_s
        request.task = control_pb2.MODEL_TASK_EMBED if self.task == "embed" else control_pb2.MODEL_TASK_GENERATE
        if self.pooling is not None:
            request.pooling = POOLINGS[self.pooling]
        if self.engine == "vllm":
            request.vllm.trust_remote_code = self.trust_remote_code
            for name in VLLM_FIELDS:
                if (value := getattr(self, name)) is not None:
                    setattr(request.vllm, name, value)
        else:
            request.llamacpp.SetInParent()
            for name in LLAMACPP_FIELDS:
                if (value := getattr(self, name)) is not None:
                    setattr(request.llamacpp, name, value)
            if self.flash_attn is not None:
                request.llamacpp.flash_attn = FLASH_MODES[self.flash_attn]
        return request


class PullRequest(RequestBody):
    """POST /v1/models/pull: a hub model into the engine's model roots."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="ORG/REPO, or ORG/REPO:QUANT for one GGUF quantization")
    engine: EngineName | None = Field(
        None, description="default: llamacpp for a quantization or a repository named *GGUF, else vllm"
    )
    revision: str | None = Field(None, description="branch, tag or commit (default main)")
    include: list[str] | None = Field(None, max_length=32, description="file patterns to fetch instead")
    exclude: list[str] | None = Field(None, max_length=32, description="file patterns not to fetch")
    stream: bool = Field(False, description="stream progress as server-sent events")

    def to_proto(self) -> control_pb2.PullModelRequest:
        return control_pb2.PullModelRequest(
            engine=engine_kind(self.engine or default_engine(self.model)),
            model=self.model.removeprefix("hf:"),
            revision=self.revision or "",
            include=self.include or [],
            exclude=self.exclude or [],
        )


class UnloadRequest(RequestBody):
    """POST /v1/models/unload: the seed's ``engine`` unloads every model of that engine;
    ``model`` unloads one model (on the engine given, or wherever it is loaded)."""

    model_config = ConfigDict(extra="forbid")

    engine: EngineName | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _names_something(self) -> UnloadRequest:
        if self.engine is None and self.model is None:
            raise ApiError(400, "unload needs engine (every model of it) or model", "engine")
        return self

    def to_proto(self) -> control_pb2.UnloadModelRequest:
        return control_pb2.UnloadModelRequest(engine=engine_kind(self.engine), model=self.model or "")


class TokenizeRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    engine: EngineName | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool | None = None

    def to_proto(self) -> pb.TokenizeRequest:
        request = pb.TokenizeRequest(engine=engine_kind(self.engine), model=self.model or "")
        if self.messages is not None:
            request.chat.CopyFrom(chat_input(self.messages, True))
        elif self.prompt is not None:
            request.text = self.prompt
        if self.add_special_tokens is not None:
            request.add_special_tokens = self.add_special_tokens
        return request


class DetokenizeRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    engine: EngineName | None = None
    tokens: list[TokenId]

    def to_proto(self) -> pb.DetokenizeRequest:
        return pb.DetokenizeRequest(engine=engine_kind(self.engine), model=self.model or "", token_ids=self.tokens)


class EmbeddingRequest(RequestBody):
    """POST /v1/embeddings, OpenAI's body (+ engine)."""

    model_config = ConfigDict(extra="allow")

    model: str
    engine: EngineName | None = None
    input: Prompt | list[Prompt] | TokenPrompt | list[TokenPrompt] = Field(
        description="a string, strings, token ids or lists of token ids (at most 2048 inputs)"
    )
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None

    @model_validator(mode="after")
    def _no_silent_drops(self) -> Self:
        check_extras(self.model_extra, EMBEDDING_FIELDS)
        return self

    def to_proto(self) -> pb.EmbedRequest:
        request = pb.EmbedRequest(engine=engine_kind(self.engine), model=self.model)
        request.request_id = request_id.current.get()
        value = self.input
        items: list[Any] = [value] if isinstance(value, str) or (value and isinstance(value[0], int)) else list(value)
        for item in items:
            if isinstance(item, str):
                request.inputs.add(text=item)
            else:
                request.inputs.add(tokens=pb.TokenIds(ids=item))
        return request
