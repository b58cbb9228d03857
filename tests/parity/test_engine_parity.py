"""Both forms of the demo model (Hugging Face for vLLM, GGUF for llama.cpp) come from the same
weights and tokenizer: the engines must tokenize alike and decode greedily alike in float32."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import LLAMACPP, VLLM, VLLM_AVAILABLE, greedy_request, llama_server_port, load_request
from tests.helpers import ServiceProcess

pytestmark = pytest.mark.skipif(not VLLM_AVAILABLE, reason="vLLM is not installed (make test installs it)")

PROMPTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "Streaming tokens from two engines behind one endpoint.",
    "吾輩は猫である。名前はまだ無い。",
    "日本語のテキストをストリーミングで生成します。",
    "Mixed: 東京 and Kyoto, 2026年11月.",
]
GREEDY_TOKENS = 16


@pytest.fixture(scope="module")
def engines(
    model_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("parity")
    llama = ServiceProcess(LLAMACPP.module, ["--model-roots", str(model_root)], logs / "llamacpp.log").start()
    vllm = ServiceProcess(VLLM.module, ["--model-roots", str(model_root)], logs / "vllm.log").start()
    # float32 everywhere: llama.cpp's flash attention and f16 KV cache round enough to flip a
    # close greedy choice, so parity runs without them.
    exact = control_pb2.LlamacppOptions(
        flash_attn=control_pb2.FLASH_ATTENTION_OFF, cache_type_k="f32", cache_type_v="f32", ctx_size=2048
    )
    for service, request in ((llama, load_request(LLAMACPP, llamacpp=exact)), (vllm, load_request(VLLM))):
        assert list(service.control.LoadModel(request, timeout=300))[-1].state == control_pb2.MODEL_STATE_LOADED
    yield llama, vllm
    llama.stop()
    vllm.stop()


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("add_special", [False, True])
def test_both_engines_tokenize_alike(
    engines: tuple[ServiceProcess, ServiceProcess], prompt: str, add_special: bool
) -> None:
    llama, vllm = engines
    request = pb.TokenizeRequest(text=prompt, add_special_tokens=add_special)
    assert list(llama.inference.Tokenize(request, timeout=30).token_ids) == list(
        vllm.inference.Tokenize(request, timeout=30).token_ids
    )


def test_both_engines_render_chat_alike(engines: tuple[ServiceProcess, ServiceProcess]) -> None:
    llama, vllm = engines
    chat = pb.ChatInput(
        messages=[pb.ChatMessage(role="system", content="短く"), pb.ChatMessage(role="user", content="Hi")]
    )
    request = pb.TokenizeRequest(chat=chat)
    assert list(llama.inference.Tokenize(request, timeout=30).token_ids) == list(
        vllm.inference.Tokenize(request, timeout=30).token_ids
    )


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_decoding_agrees_token_by_token(engines: tuple[ServiceProcess, ServiceProcess], prompt: str) -> None:
    llama, vllm = engines
    request = greedy_request(prompt, GREEDY_TOKENS)
    vllm_ids = [t for r in vllm.inference.Generate(request, timeout=120) for t in r.delta.token_ids]
    # llama-server streams no id for a token that only completes a character later, so the
    # full id list comes from its non-streamed answer (same binary and flags as the engine).
    direct = httpx.post(
        f"http://127.0.0.1:{llama_server_port(llama)}/completion",
        json={
            "prompt": prompt,
            "n_predict": GREEDY_TOKENS,
            "temperature": 0,
            "ignore_eos": True,
            "return_tokens": True,
        },
        timeout=120,
    ).json()
    assert direct["tokens"] == vllm_ids
    llama_text = "".join(r.delta.text for r in llama.inference.Generate(request, timeout=120))
    vllm_text = "".join(r.delta.text for r in vllm.inference.Generate(request, timeout=120))
    assert llama_text == vllm_text
