"""The generated demo model: tokenizer round-trips, GGUF readback, seeded weights, decisiveness."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from switchyard import demo_model as dm
from switchyard.demo_formats import CHAT_TEMPLATE, SPECIAL_TOKENS

SEED = 0
TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "吾輩は猫である。名前はまだ無い。",
    "カタカナとひらがな、漢字：鬱蒼 𠮷野家 🚃 ｶﾀｶﾅ\n\tmixed  spaces and 123.",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return dm.make_demo_model(tmp_path_factory.mktemp("models"), seed=SEED)


@pytest.fixture(scope="module")
def tok(model: tuple[Path, Path]) -> Tokenizer:
    return Tokenizer.from_file(str(model[0] / "tokenizer.json"))


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_round_trips(tok: Tokenizer, text: str) -> None:
    ids = tok.encode(text).ids
    assert ids[0] == 0  # BOS, like llama.cpp's add_bos_token
    assert tok.decode(ids) == text
    assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


def test_tokenizer_learned_japanese_and_specials(tok: Tokenizer) -> None:
    assert tok.get_vocab_size() == 1002  # 1000 learned, and the two tool-call tags
    tags = tok.encode("x<tool_call>{}</tool_call>", add_special_tokens=False)
    assert tags.tokens[1] == "<tool_call>" and tags.tokens[-1] == "</tool_call>"
    assert tok.decode(tags.ids) == "x<tool_call>{}</tool_call>"  # plain text, not special
    assert len(tok.encode("吾輩は猫である。", add_special_tokens=False).ids) <= 6
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert tok.encode("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False).ids[0] == 2


def test_hf_folder(model: tuple[Path, Path], tok: Tokenizer) -> None:
    folder = model[0]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert (cfg["hidden_size"], cfg["num_attention_heads"], cfg["head_dim"]) == (128, 4, 32)
    assert cfg["vocab_size"] == tok.get_vocab_size()
    assert cfg["torch_dtype"] == "float32" and cfg["tie_word_embeddings"] is False
    tcfg = json.loads((folder / "tokenizer_config.json").read_text())
    assert tcfg["add_bos_token"] is True and tcfg["bos_token"] == "<s>"
    assert tcfg["chat_template"] == CHAT_TEMPLATE
    for name in ("generation_config.json", "special_tokens_map.json", "model.safetensors"):
        assert (folder / name).is_file()


def test_chat_template_renders() -> None:
    jinja2 = pytest.importorskip("jinja2")
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "こんにちは"}]
    template = jinja2.Environment().from_string(CHAT_TEMPLATE)
    out = template.render(messages=msgs, bos_token="<s>", add_generation_prompt=True)
    assert out == (
        "<s><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nこんにちは<|im_end|>\n<|im_start|>assistant\n"
    )


def test_gguf_reads_back(model: tuple[Path, Path], tok: Tokenizer) -> None:
    folder, path = model
    reader = gguf.GGUFReader(path)
    meta = {k: f.contents() for k, f in reader.fields.items()}
    assert meta["general.architecture"] == "llama"
    assert meta["llama.embedding_length"] == 128 and meta["llama.rope.dimension_count"] == 32
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    vocab = tok.get_vocab()
    assert meta["tokenizer.ggml.tokens"] == sorted(vocab, key=vocab.__getitem__)
    assert meta["tokenizer.ggml.token_type"][:5] == [3, 3, 3, 3, 1]
    assert len(meta["tokenizer.ggml.merges"]) == len(json.loads(tok.to_str())["model"]["merges"])
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"]) == (0, 1)
    assert meta["tokenizer.ggml.add_bos_token"] is True
    assert meta["tokenizer.chat_template"] == CHAT_TEMPLATE

    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    expected = {"token_embd.weight": (1002, 128), "output.weight": (1002, 128), "output_norm.weight": (128,)}
    for i in range(2):
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            expected[f"blk.{i}.{n}.weight"] = (128, 128)
        expected |= {f"blk.{i}.ffn_gate.weight": (256, 128), f"blk.{i}.ffn_up.weight": (256, 128)}
        expected |= {f"blk.{i}.ffn_down.weight": (128, 256), f"blk.{i}.attn_norm.weight": (128,)}
        expected[f"blk.{i}.ffn_norm.weight"] = (128,)
    assert {k: v.shape for k, v in tensors.items()} == expected
    hf = load_file(str(folder / "model.safetensors"))
    np.testing.assert_array_equal(tensors["token_embd.weight"], hf["model.embed_tokens.weight"])
    np.testing.assert_array_equal(tensors["blk.1.ffn_down.weight"], hf["model.layers.1.mlp.down_proj.weight"])
    q = hf["model.layers.0.self_attn.q_proj.weight"]
    np.testing.assert_array_equal(tensors["blk.0.attn_q.weight"], dm._permute_rope(q, 4))


def _rotate(x: np.ndarray, y: np.ndarray, ang: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x * np.cos(ang) - y * np.sin(ang), y * np.cos(ang) + x * np.sin(ang)


def test_rope_permutation_matches_interleaved_rope() -> None:
    """HF's rotate-half rope on W x, permuted, equals llama.cpp's pairwise rope on permuted W x."""
    rng = np.random.default_rng(1)
    n_head, hd, pos = 4, 32, 7
    w, x = rng.standard_normal((n_head * hd, 16)), rng.standard_normal(16)
    ang = pos / 10000.0 ** (np.arange(0, hd, 2) / hd)
    q = (w @ x).reshape(n_head, 2, hd // 2)  # HF: dim i pairs with dim i + hd/2
    hf = np.stack(_rotate(q[:, 0], q[:, 1], ang), 1).reshape(-1, 1)
    p = (dm._permute_rope(w, n_head) @ x).reshape(n_head, hd // 2, 2)  # llama.cpp: 2i with 2i+1
    ll = np.stack(_rotate(p[..., 0], p[..., 1], ang), -1).reshape(-1)
    np.testing.assert_allclose(ll, dm._permute_rope(hf, n_head).reshape(-1))


def test_weights_are_seeded(model: tuple[Path, Path]) -> None:
    cfg = dm.DemoConfig(vocab_size=1002)
    a, b, c = dm.init_weights(cfg, SEED), dm.init_weights(cfg, SEED), dm.init_weights(cfg, SEED + 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["lm_head.weight"], c["lm_head.weight"])
    on_disk = load_file(str(model[0] / "model.safetensors"))
    assert on_disk.keys() == a.keys() and all(np.array_equal(a[k], on_disk[k]) for k in a)
    assert dm.build_tokenizer().to_str() == dm.build_tokenizer().to_str()


def test_make_is_idempotent(tmp_path: Path) -> None:
    folder, path = dm.make_demo_model(tmp_path, seed=3)
    stamp = path.stat().st_mtime_ns
    assert dm.make_demo_model(tmp_path, seed=3) == (folder, path)
    assert path.stat().st_mtime_ns == stamp  # skipped
    dm.make_demo_model(tmp_path, seed=4)
    assert json.loads((folder / dm.MARKER).read_text())["seed"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def reference_logits(w: dict[str, np.ndarray], ids: list[int], cfg: dm.DemoConfig) -> np.ndarray:
    """A float32 numpy Llama forward pass (HF layout), last position's logits."""
    nh, hd, t = cfg.num_heads, cfg.head_dim, len(ids)

    def norm(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        out: np.ndarray = x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg.rms_norm_eps) * g
        return out

    ang = np.arange(t)[:, None] / cfg.rope_theta ** (np.arange(0, hd, 2) / hd)
    cos, sin = (np.tile(f(ang), 2)[:, None, :].astype(np.float32) for f in (np.cos, np.sin))

    def rope(v: np.ndarray) -> np.ndarray:
        rotated: np.ndarray = v * cos + np.concatenate([-v[..., hd // 2 :], v[..., : hd // 2]], -1) * sin
        return rotated

    x = w["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((t, t), -np.inf, np.float32), 1)
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        h = norm(x, w[p + "input_layernorm.weight"])
        q, k, v = (h @ w[p + f"self_attn.{n}_proj.weight"].T for n in "qkv")
        s = np.einsum("qhd,khd->hqk", rope(q.reshape(t, nh, hd)), rope(k.reshape(t, nh, hd)))
        s = np.exp(s / np.sqrt(hd) + mask - (s / np.sqrt(hd) + mask).max(-1, keepdims=True))
        o = np.einsum("hqk,khd->qhd", s / s.sum(-1, keepdims=True), v.reshape(t, nh, hd))
        x = x + o.reshape(t, -1) @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    out = w.get("lm_head.weight", w["model.embed_tokens.weight"])  # tied when there is no lm_head
    return np.asarray(norm(x, w["model.norm.weight"])[-1] @ out.T)


@pytest.mark.parametrize("text", TEXTS[:2])
def test_greedy_is_decisive(model: tuple[Path, Path], tok: Tokenizer, text: str) -> None:
    """Greedy steps win by far more than float32 rounding moves a logit; no special is chosen."""
    w = load_file(str(model[0] / "model.safetensors"))
    cfg = dm.DemoConfig(vocab_size=tok.get_vocab_size())
    ids = tok.encode(text).ids
    for _ in range(16):
        logits = reference_logits(w, ids, cfg)
        top2 = np.sort(logits)[-2:]
        assert top2[1] - top2[0] > 1e-3 * logits.std()
        assert int(logits.argmax()) >= len(SPECIAL_TOKENS)
        ids.append(int(logits.argmax()))
