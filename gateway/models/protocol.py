"""The request bodies of the model administration routes (load, unload, pull) and their
control requests: the seed's load body, plus typed options for each engine."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from gateway.errors import ApiError
from gateway.fields import EngineName, RequestBody, engine_kind
from switchyard.hub_names import default_engine
from switchyard.v1 import control_pb2

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

    model_path: str | None = Field(None, description="a path under the model roots, or hf:ORG/REPO[:QUANT]")
    model: str | None = Field(
        None, max_length=256, description="instead of model_path: a name /v1/models lists as available"
    )
    engine: EngineName | None = Field(None, description="required with model_path; with model, default by engine order")
    served_model_name: str | None = None
    aliases: list[str] = Field(default_factory=list, max_length=16, description="more names the model answers to")
    keep_alive_s: float | None = Field(
        None, ge=0, description="unload after this many idle seconds (0: never; unset: the engine's default)"
    )
    task: Literal["generate", "embed"] = Field("generate", description="embed: serve /v1/embeddings only")
    pooling: Literal["mean", "cls", "last"] | None = Field(None, description="with task embed (default mean)")
    tool_parser: str | None = Field(
        None, max_length=64, description="tool-call parser: auto (from the chat template), none, or a vLLM parser name"
    )
    reasoning_parser: str | None = Field(
        None, max_length=64, description="reasoning parser: auto, none, or a vLLM parser name (e.g. qwen3)"
    )
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
        """One of model_path and model; options given that belong to another engine than the
        one named are refused, naming them (with no engine named, engine options need one)."""
        if (self.model_path is None) == (self.model is None):
            raise ApiError(400, "give model_path or model, one of them", "model_path")
        if self.model_path is not None and self.engine is None:
            raise ApiError(400, "engine is required with model_path", "engine")
        options = {
            "vllm": [*VLLM_FIELDS, "trust_remote_code"],
            "llamacpp": [*LLAMACPP_FIELDS, "flash_attn"],
        }
        given = [name for engine, names in options.items() if engine != self.engine for name in names]
        misplaced = [name for name in given if getattr(self, name) not in (None, False)]
        if misplaced:
            where = f"to {self.engine}" if self.engine else "without engine"
            raise ApiError(400, f"options {', '.join(misplaced)} do not apply {where}", misplaced[0])
        return self

    def to_proto(self) -> control_pb2.LoadModelRequest:
        """The control request; a load by ``model`` is resolved to a path and engine first
        (ModelServing.load)."""
        assert self.model_path is not None and self.engine is not None
        request = control_pb2.LoadModelRequest(
            engine=engine_kind(self.engine),
            model_path=self.model_path,
            served_model_name=self.served_model_name or "",
            aliases=self.aliases,
            tool_parser=self.tool_parser or "",
            reasoning_parser=self.reasoning_parser or "",
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
        model = self.model or ""
        return control_pb2.UnloadModelRequest(engine=engine_kind(self.engine), model=model, all=not model)
