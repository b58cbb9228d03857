"""Make switchyard's demo model: a tiny random Llama, as a Hugging Face folder and as GGUF.

No model hub is reachable from our build and test machines, so tests and the demo use a model
generated here from a seed: the same float32 weights are written as safetensors (for vLLM) and
as GGUF (for llama.cpp), with one byte-level BPE tokenizer (it round-trips Japanese) and one
chat template, so both engines tokenize and decode greedily to the same token ids.

Variants (``--variant``, see demo_formats) speak a model family's chat format with its special
tokens (Qwen3 thinking + Hermes tools, gpt-oss harmony, Mistral tools), for the engines' own
format parsers; ``harmony-o200k`` carries gpt-oss's whole o200k_harmony vocabulary.

Usage: ``python -m switchyard.demo_model --out DIR [--variant V] [--seed N] [--name NAME] [--force]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from switchyard import demo_o200k
from switchyard.demo_formats import (
    BASE,
    BASE_FORMAT,
    SPECIAL_TOKENS,
    VARIANTS,
    ChatFormat,
    chat_format,
)

NAME = "switchyard-demo"
FORMAT_VERSION = 2  # bump when the output changes for the same seed, so old copies are redone
SCRIPT_VERSION = 1  # the same for a scripted variant's steps (demo_formats.ChatFormat.script)
MARKER = "switchyard_demo.json"
CORPUS = """\
A switchyard is a place where railway cars are sorted onto the right tracks. Trains arrive
from many lines, the cars are uncoupled, and each one rolls over a hump and through a set of
switches until it reaches the track of the train that will carry it further. The yard master
decides which engine pulls which train, and when it may leave.
This server works the same way. A request comes in on one port, the router looks at the engine
it asks for and at the model that is loaded, and sends it to a backend that can answer quickly.
Tokens stream back to the client as soon as they are generated, one small piece at a time.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs! How
vexingly quick daft zebras jump. What is the capital of France? It is Paris, of course.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 3.14; symbols: ( ) [ ] { } < > + - * / = # @ & %.
Please write a short story about a robot who learns to cook. Tell me about the weather today.
Hello, world! Thank you very much. I don't know, but we'll see; they're here, and it's fine.
操車場では、いろいろな路線から着いた貨車を行き先ごとに仕分けます。機関車が貨車を押して坂を
上げると、貨車は一両ずつ坂を下り、分岐器を通って正しい線路に入ります。
このサーバーも同じように動きます。リクエストは一つのポートに届き、ルーターがエンジンと
モデルを見て、すぐに答えられるバックエンドへ送ります。生成されたトークンは少しずつ
クライアントへ返されます。
日本語の文章を正しく扱うことはとても大切です。ひらがな、カタカナ、漢字が混ざった文でも、
文字が途中で切れたり、化けたりしてはいけません。
今日はいい天気ですね。東京は晴れ、大阪はくもり、札幌は雪が降っています。
吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。
春はあけぼの。やうやう白くなりゆく山ぎは、すこしあかりて、紫だちたる雲のほそくたなびきたる。
ロボットが料理を覚える短い物語を書いてください。コンピューター、データベース、ネットワーク、
ソフトウェア、インターフェース、メッセージ、ストリーミング、ベンチマーク。
人工知能の研究は、機械学習と自然言語処理の発展によって大きく進みました。
ありがとうございます。よろしくお願いします。おはようございます。こんにちは、世界！
"""


LEARNED = 1000 - len(SPECIAL_TOKENS)  # BPE tokens learned from the corpus, in every small vocabulary


def default_name(variant: str = BASE) -> str:
    """``switchyard-demo`` for the base demo, ``switchyard-demo-VARIANT`` for the others."""
    return NAME if variant == BASE else f"{NAME}-{variant}"


def _id(tok: Tokenizer, token: str) -> int:
    found = tok.token_to_id(token)
    if found is None:
        raise ValueError(f"{token!r} is not in the vocabulary")
    return int(found)


@dataclass(frozen=True)
class DemoConfig:
    """Hyperparameters; head_dim must stay >= 32, the least vLLM's CPU attention accepts."""

    vocab_size: int
    hidden_size: int = 128
    num_heads: int = 4
    head_dim: int = 32
    num_layers: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 4096
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5


def demo_config(fmt: ChatFormat, vocab_size: int) -> DemoConfig:
    """The base shape, or for the o200k vocabulary a narrower one (its embedding is most of the
    model: 201088 x 64 float32 is 51 MB; tied to the output unless the variant is scripted)."""
    if fmt.o200k:
        return DemoConfig(vocab_size=vocab_size, hidden_size=64, num_heads=2, intermediate_size=128)
    return DemoConfig(vocab_size=vocab_size)


def build_tokenizer(variant: str = BASE) -> Tokenizer:
    """Train a GPT-2 style byte-level BPE (any UTF-8 round-trips) on the embedded corpus, with the
    variant's special tokens first (ids 0..) and its text markers last; or o200k_harmony."""
    fmt = chat_format(variant)
    if fmt.o200k:
        return demo_o200k.build_o200k_tokenizer()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=LEARNED + len(fmt.control),
        special_tokens=list(fmt.control),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    # Markers (tool-call tags, think tags) are whole tokens that decode as text, as in Qwen's vocabulary.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in fmt.markers])
    if fmt.add_bos:  # prepend BOS like Llama does, so HF and llama.cpp (add_bos_token) agree on prompts
        bos = fmt.control.index(fmt.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{fmt.bos} $A", pair=f"{fmt.bos} $A {fmt.bos} $B", special_tokens=[(fmt.bos, bos)]
        )
    return tok


def quiet_ids(fmt: ChatFormat, tok: Tokenizer) -> list[int]:
    """Tokens whose output row is zero: never chosen by the random weights, only when steered."""
    if fmt.o200k:
        return list(demo_o200k.special_ids())
    quiet = [*fmt.control, *(fmt.markers if fmt.quiet_markers else ())]
    return sorted(_id(tok, t) for t in quiet)


def script_ids(fmt: ChatFormat, tok: Tokenizer) -> list[tuple[int, int]]:
    """The variant's scripted steps as token ids; each text must be exactly one token."""
    steps = []
    if fmt.script_run is not None:
        after, text = fmt.script_run
        run = [*tok.encode(after, add_special_tokens=False).ids[-1:], *tok.encode(text, add_special_tokens=False).ids]
        if len(set(run[:-1])) != len(run) - 1:
            raise ValueError(f"the scripted run {text!r} repeats a token: a token may have one successor only")
        steps += list(itertools.pairwise(run))
    for source, target in fmt.script:
        ids = [tok.encode(text, add_special_tokens=False).ids for text in (source, target)]
        if any(len(each) != 1 for each in ids):
            raise ValueError(f"scripted step {source!r} -> {target!r} is not one token to one token: {ids}")
        steps.append((ids[0][0], ids[1][0]))
    return steps


SCRIPT_SIGNAL = 1000.0  # a scripted source's embedding, along its own reserved dimension
SCRIPT_GAIN = 10.0  # its target's output row along it: a logit near 100, far above any other


def _script(w: dict[str, np.ndarray], cfg: DemoConfig, steps: list[tuple[int, int]]) -> None:
    """Make each scripted source token's next greedy token its target, whatever came before.

    The last ``len(steps)`` hidden dimensions are reserved, one per step: no token's embedding
    and no layer's output (attention o_proj, MLP down_proj) write them, and no output row reads
    them, except that a source's embedding is a large signal along its own dimension and its
    target's output row reads only that dimension. At a source position the residual stream is
    then almost that signal (the layers add a few units to 1000), so after the final norm the
    target's logit is about 10 x 11 while every other logit stays near 0; elsewhere the reserved
    dimensions are zero, so targets keep a logit of 0 (quiet) and the model is as random as ever.
    """
    h = cfg.hidden_size
    reserved = list(range(h - len(steps), h))
    embed = w["model.embed_tokens.weight"]
    embed[:, reserved] = 0.0
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        w[p + "self_attn.o_proj.weight"][reserved, :] = 0.0
        w[p + "mlp.down_proj.weight"][reserved, :] = 0.0
    head = w["lm_head.weight"]
    head[:, reserved] = 0.0
    for dim, (source, target) in zip(reserved, steps, strict=True):
        embed[source] = 0.0
        embed[source, dim] = SCRIPT_SIGNAL
        head[target] = 0.0
        head[target, dim] = SCRIPT_GAIN


def init_weights(
    cfg: DemoConfig,
    seed: int,
    quiet: list[int] | None = None,
    tied: bool = False,
    script: list[tuple[int, int]] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded float32 weights under HF Llama names, scaled so greedy top-1 wins clearly.

    Random Llamas have near-ties that float rounding (e.g. llama.cpp's f16 KV cache) flips.
    Unit-scale embeddings and lm_head give logits of std ~11; the MLP (std 0.2) dominates the
    residual, and small Q/K (0.05) and V/O (0.1) keep attention, the path that carries the
    rounding of the KV cache, modest while the next token still depends on the context.
    Special tokens (``quiet``, default the base's four) get zero lm_head rows (logit 0, far below
    the max): never chosen, so ``ignore_eos`` means the same on every engine and outputs hold no
    control tokens. ``tied``: no lm_head, the embedding is the output too (its quiet rows zero).
    """
    rng = np.random.default_rng(seed)
    h, ff, v = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    quiet = list(range(len(SPECIAL_TOKENS))) if quiet is None else quiet

    def normal(std: float, *shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w: dict[str, np.ndarray] = {"model.embed_tokens.weight": normal(1.0, v, h)}
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        for proj, std in (("q_proj", 0.05), ("k_proj", 0.05), ("v_proj", 0.1), ("o_proj", 0.1)):
            w[p + f"self_attn.{proj}.weight"] = normal(std, h, h)
        w[p + "mlp.gate_proj.weight"] = normal(0.2, ff, h)
        w[p + "mlp.up_proj.weight"] = normal(0.2, ff, h)
        w[p + "mlp.down_proj.weight"] = normal(0.2, h, ff)
        w[p + "input_layernorm.weight"] = np.ones(h, np.float32)
        w[p + "post_attention_layernorm.weight"] = np.ones(h, np.float32)
    w["model.norm.weight"] = np.ones(h, np.float32)
    if tied:
        w["model.embed_tokens.weight"][quiet] = 0.0
        return w
    lm_head = normal(1.0, v, h)
    lm_head[quiet] = 0.0
    w["lm_head.weight"] = lm_head
    if script:
        _script(w, cfg, script)
    return w


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_hf(
    folder: Path, cfg: DemoConfig, tok: Tokenizer, weights: dict[str, np.ndarray], fmt: ChatFormat = BASE_FORMAT
) -> None:
    """Write the Hugging Face folder that vLLM (and transformers) load."""
    folder.mkdir(parents=True, exist_ok=True)
    eos_ids = [_id(tok, t) for t in fmt.stops]
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads, "num_key_value_heads": cfg.num_heads,
        "head_dim": cfg.head_dim, "hidden_act": "silu",
        "max_position_embeddings": cfg.max_position_embeddings, "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta, "rope_scaling": None, "attention_bias": False,
        "mlp_bias": False, "tie_word_embeddings": "lm_head.weight" not in weights, "torch_dtype": "float32",
        "bos_token_id": _id(tok, fmt.bos), "eos_token_id": eos_ids[0], "use_cache": True,
    }  # fmt: skip
    if fmt.o200k:  # transformers 5 takes a local split regex without this for Mistral's old, wrong one
        config["transformers_version"] = "5.0.0"
    _write_json(folder / "config.json", config)
    _write_json(folder / "generation_config.json", {"bos_token_id": _id(tok, fmt.bos), "eos_token_id": eos_ids})
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "model.safetensors").chmod(0o644)  # safetensors writes 0600; engines may not be us
    tok.save(str(folder / "tokenizer.json"))
    _write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": fmt.bos, "eos_token": fmt.eos,
        "additional_special_tokens": fmt.named_specials, "add_bos_token": fmt.add_bos,
        "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_max_length": cfg.max_position_embeddings, "chat_template": fmt.template,
    })  # fmt: skip
    _write_json(folder / "special_tokens_map.json", {
        "bos_token": fmt.bos, "eos_token": fmt.eos, "additional_special_tokens": fmt.named_specials,
    })  # fmt: skip


def _permute_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo HF's rotary layout (halves) into llama.cpp's (interleaved pairs), per head."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_tensors(cfg: DemoConfig, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map HF tensor names to llama.cpp's, permuting Q and K for its rotary embedding. Without
    ``output.weight`` llama.cpp ties the output to the embedding, as HF's tie_word_embeddings."""
    out = {"token_embd.weight": w["model.embed_tokens.weight"], "output_norm.weight": w["model.norm.weight"]}
    if "lm_head.weight" in w:
        out["output.weight"] = w["lm_head.weight"]
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
             "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}  # fmt: skip
    for i in range(cfg.num_layers):
        for hf, gg in names.items():
            t = w[f"model.layers.{i}.{hf}.weight"]
            if gg in ("attn_q", "attn_k"):
                t = _permute_rope(t, cfg.num_heads)
            out[f"blk.{i}.{gg}.weight"] = np.ascontiguousarray(t)
    return out


def gguf_vocab(tok: Tokenizer, fmt: ChatFormat) -> tuple[list[str], list[gguf.TokenType], list[str]]:
    """Tokens by id, their GGUF types (special tokens CONTROL, markers USER_DEFINED) and merges."""
    saved = json.loads(tok.to_str())
    model = saved["model"]
    added = {t["content"]: t for t in saved["added_tokens"]}
    vocab: dict[str, int] = {**model["vocab"], **{c: t["id"] for c, t in added.items()}}
    tokens = sorted(vocab, key=vocab.__getitem__)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    control = {c for c, t in added.items() if t["special"]} | set(fmt.control)
    types = [
        gguf.TokenType.CONTROL
        if t in control
        else gguf.TokenType.USER_DEFINED
        if t in fmt.markers
        else gguf.TokenType.NORMAL
        for t in tokens
    ]
    return tokens, types, merges


def write_gguf(
    path: Path,
    cfg: DemoConfig,
    tok: Tokenizer,
    weights: dict[str, np.ndarray],
    name: str = NAME,
    fmt: ChatFormat = BASE_FORMAT,
) -> None:
    """Write the same model as an f32 GGUF; llama.cpp's converter rejects our unknown BPE."""
    tokens, types, merges = gguf_vocab(tok, fmt)
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_name(name)
    wr.add_file_type(gguf.LlamaFileType.ALL_F32)
    wr.add_vocab_size(cfg.vocab_size)
    wr.add_context_length(cfg.max_position_embeddings)
    wr.add_embedding_length(cfg.hidden_size)
    wr.add_block_count(cfg.num_layers)
    wr.add_feed_forward_length(cfg.intermediate_size)
    wr.add_head_count(cfg.num_heads)
    wr.add_head_count_kv(cfg.num_heads)
    wr.add_rope_dimension_count(cfg.head_dim)
    wr.add_rope_freq_base(cfg.rope_theta)
    wr.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    wr.add_tokenizer_model("gpt2")
    # GPT-2's regex is what ByteLevel(use_regex=True) splits by; "gpt-4o" is o200k's.
    wr.add_tokenizer_pre("gpt-4o" if fmt.o200k else "gpt-2")
    wr.add_token_list(tokens)
    wr.add_token_types(types)
    wr.add_token_merges(merges)
    wr.add_bos_token_id(_id(tok, fmt.bos))
    wr.add_eos_token_id(_id(tok, fmt.eos))
    if fmt.eot is not None:
        wr.add_eot_token_id(_id(tok, fmt.eot))
    wr.add_add_bos_token(fmt.add_bos)
    wr.add_add_eos_token(False)
    wr.add_chat_template(fmt.template)
    for tensor_name, tensor in _gguf_tensors(cfg, weights).items():
        wr.add_tensor(tensor_name, tensor)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def _is_current(folder: Path, gguf_path: Path, want: dict[str, Any]) -> bool:
    """True when both outputs exist and the marker says they were made with ``want``."""
    try:
        stored = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return gguf_path.is_file() and {k: stored.get(k) for k in want} == want


def make_demo_model(
    out: Path, seed: int = 0, force: bool = False, name: str | None = None, variant: str = BASE
) -> tuple[Path, Path]:
    """Write ``out/NAME/`` and ``out/NAME.gguf`` unless already there (another ``seed`` and
    ``name`` make a second model with other weights and the same tokenizer). ``variant`` picks
    the chat format (see demo_formats); NAME defaults to ``switchyard-demo[-VARIANT]``.

    Both are built in a temporary place and moved in, the folder with its marker (seed, format,
    variant) last, so an interrupted run never leaves a half model that looks complete, and a
    concurrent run that wins the race is accepted.
    """
    fmt = chat_format(variant)
    name = default_name(variant) if name is None else name
    folder, gguf_path = out / name, out / f"{name}.gguf"
    # The base marker has no "variant" key (its bytes predate variants); .get() reads it as None.
    want: dict[str, Any] = {
        "seed": seed,
        "format": FORMAT_VERSION,
        "variant": None if variant == BASE else variant,
        "script": SCRIPT_VERSION if fmt.script or fmt.script_run else None,
    }
    if not force and _is_current(folder, gguf_path, want):
        return folder, gguf_path
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(variant)
    cfg = demo_config(fmt, tok.get_vocab_size())
    script = script_ids(fmt, tok)
    # a scripted token's row is its source signal in, its target's out: tied, one row cannot be both
    weights = init_weights(cfg, seed, quiet_ids(fmt, tok), tied=fmt.o200k and not script, script=script)
    marker = {k: v for k, v in want.items() if v is not None}
    with tempfile.TemporaryDirectory(dir=out, prefix=f".{name}-") as tmp:
        write_hf(Path(tmp) / name, cfg, tok, weights, fmt)
        write_gguf(Path(tmp) / "model.gguf", cfg, tok, weights, name, fmt)
        _write_json(Path(tmp) / name / MARKER, {**marker, "config": asdict(cfg)})
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(Path(tmp) / "model.gguf", gguf_path)
        try:
            os.replace(Path(tmp) / name, folder)
        except OSError:
            if not _is_current(folder, gguf_path, want):
                raise
    return folder, gguf_path


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("models"), help="default ./models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", default=BASE, choices=[BASE, *VARIANTS], help="chat format (default base)")
    parser.add_argument("--name", help=f"model name (default {NAME}, or {NAME}-VARIANT)")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    folder, gguf_path = make_demo_model(args.out, args.seed, args.force, args.name, args.variant)
    print(f"Hugging Face folder: {folder}\nGGUF: {gguf_path}")


if __name__ == "__main__":
    main()
