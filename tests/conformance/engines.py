"""The engines the conformance suite runs against, and what differs between them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from switchyard.v1 import common_pb2, control_pb2, inference_pb2

if TYPE_CHECKING:
    from tests.helpers import ServiceProcess


@dataclass(frozen=True)
class EngineUnderTest:
    name: str
    kind: common_pb2.Engine.ValueType
    other_kind: common_pb2.Engine.ValueType
    module: str
    model: str  # path relative to the model root
    served_name: str
    load_options: dict[str, object]  # LoadModelRequest keyword arguments
    wrong_options: dict[str, object]  # the other engine's options
    # The greedy text for (prompt, n tokens, ignore_eos) decoded in one piece, not streamed.
    non_streamed_text: Callable[[ServiceProcess, str, int], str]
    # Names of the processes that hold the model (children of the service).
    engine_processes: frozenset[str]
    service_args: list[str] = field(default_factory=list)

    def engine_children(self, service: ServiceProcess) -> list[int]:
        return [p.pid for p in service.children() if p.name() in self.engine_processes]


def llama_server_port(service: ServiceProcess) -> str:
    child = next(p for p in service.children() if p.name() == "llama-server")
    return child.cmdline()[child.cmdline().index("--port") + 1]


def llama_server_text(service: ServiceProcess, prompt: str, n: int) -> str:
    """llama-server's own non-streamed answer."""
    answer = httpx.post(
        f"http://127.0.0.1:{llama_server_port(service)}/completion",
        json={"prompt": prompt, "n_predict": n, "temperature": 0, "ignore_eos": True},
        timeout=120,
    )
    content: str = answer.raise_for_status().json()["content"]
    return content


LLAMACPP = EngineUnderTest(
    name="llamacpp",
    kind=common_pb2.ENGINE_LLAMACPP,
    other_kind=common_pb2.ENGINE_VLLM,
    module="services.engine_llamacpp",
    model="switchyard-demo.gguf",
    served_name="switchyard-demo",
    load_options={"llamacpp": control_pb2.LlamacppOptions(ctx_size=4096, parallel=8)},
    wrong_options={"vllm": control_pb2.VllmOptions(dtype="float32")},
    non_streamed_text=llama_server_text,
    engine_processes=frozenset({"llama-server"}),
    service_args=["--no-restart-on-crash"],
)


def greedy_request(prompt: str, n: int) -> inference_pb2.GenerateRequest:
    """Exactly ``n`` greedy tokens with their ids."""
    return inference_pb2.GenerateRequest(
        prompt=prompt,
        sampling=inference_pb2.SamplingParams(temperature=0.0),
        stopping=inference_pb2.StoppingCriteria(max_tokens=n, ignore_eos=True),
        output=inference_pb2.OutputOptions(return_token_ids=True),
    )


def tokens_per_message(service: ServiceProcess, prompt: str, n: int) -> list[int]:
    """How many of ``n`` greedy tokens each streamed delta carried, in order."""
    responses = service.inference.Generate(greedy_request(prompt, n), timeout=120)
    return [len(r.delta.token_ids) for r in responses if r.HasField("delta")]


def assert_runs_of(counts: list[int], interval: int, n: int) -> None:
    """A stream under ``--stream-interval``: after the first message none shorter than the
    interval but the last (the tail when the stream ends). The ids may be fewer than ``n``:
    llama-server lists only the last token of a chunk whose text it held back (a character
    split across tokens), and none for a last token whose text never completed."""
    assert sum(counts) <= n and len(counts) >= 2, counts
    assert all(count >= interval for count in counts[1:-1]), counts


def detokenized_text(service: ServiceProcess, prompt: str, n: int) -> str:
    """The generated token ids decoded in one piece by the engine's tokenizer."""
    ids = [t for r in service.inference.Generate(greedy_request(prompt, n), timeout=120) for t in r.delta.token_ids]
    assert len(ids) == n
    detokenized: str = service.inference.Detokenize(inference_pb2.DetokenizeRequest(token_ids=ids), timeout=30).text
    return detokenized


VLLM = EngineUnderTest(
    name="vllm",
    kind=common_pb2.ENGINE_VLLM,
    other_kind=common_pb2.ENGINE_LLAMACPP,
    module="services.engine_vllm",
    model="switchyard-demo",
    served_name="switchyard-demo",
    # float32 keeps greedy decoding comparable with llama.cpp; the KV cache is explicit on CPU.
    load_options={"vllm": control_pb2.VllmOptions(dtype="float32", kv_cache_memory_bytes=128 * 1024**2)},
    wrong_options={"llamacpp": control_pb2.LlamacppOptions(ctx_size=1024)},
    non_streamed_text=detokenized_text,
    engine_processes=frozenset({"VLLM::EngineCore", "VLLM::Worker"}),
)

VLLM_AVAILABLE = importlib.util.find_spec("vllm") is not None
# vLLM is part of the test install (make test); without it only llama.cpp runs, and says so.
ENGINES = [LLAMACPP, VLLM] if VLLM_AVAILABLE else [LLAMACPP]


def load_request(engine: EngineUnderTest, **overrides: object) -> control_pb2.LoadModelRequest:
    kwargs: dict[str, object] = {
        "engine": engine.kind,
        "model_path": engine.model,
        "served_model_name": engine.served_name,
        **engine.load_options,
        **overrides,
    }
    return control_pb2.LoadModelRequest(**kwargs)  # type: ignore[arg-type]
