"""The demo model's format variants: templates, special tokens, and the GGUF copy of each vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from switchyard import demo_model as dm
from switchyard import demo_o200k
from switchyard.demo_formats import HARMONY_O200K, VARIANTS
from tests.unit.test_demo_model import reference_logits

SMALL = ["qwen3", "harmony", "mistral"]  # the variants with the small trained vocabulary
TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "吾輩は猫である。名前はまだ無い。",
    "カタカナとひらがな、漢字：鬱蒼 𠮷野家 🚃 ｶﾀｶﾅ\n\tmixed  spaces and 123. don't WE'LL a/b/c\r\n",
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "reasoning_content": "Need the weather.", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 20}'},
]
TOOLS_JSON = (
    '{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}'
)
EXPECTED = {
    "qwen3": (
        "<|im_start|>system\nBe brief.\n\n# Tools\n\n"
        "You can call these functions, each described by a JSON signature:\n<tools>\n" + TOOLS_JSON + "\n</tools>\n\n"
        "To call one, write its name and arguments as a JSON object between tool_call tags:\n"
        '<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call><|im_end|>\n'
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nNeed the weather.\n</think>\n\n"
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>\n'
        '<|im_start|>user\n<tool_response>\n{"temp": 20}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n"
    ),
    "harmony": (
        "<|start|>system<|message|>You are the switchyard demo model.\n\nReasoning: medium\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.\n"
        "Calls to these tools must go to the commentary channel: 'functions'.<|end|>"
        "<|start|>developer<|message|># Instructions\n\nBe brief.\n\n"
        "# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// Weather of a city\n"
        'type get_weather = (_: {"type": "object", "properties": {"city": {"type": "string"}}}) => any;\n\n'
        "} // namespace functions<|end|>"
        "<|start|>user<|message|>Weather in Paris?<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>Need the weather.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"city": "Paris"}<|call|>'
        '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"temp": 20}<|end|>'
        "<|start|>assistant"
    ),
    "mistral": (
        "<s>[AVAILABLE_TOOLS][" + TOOLS_JSON + "][/AVAILABLE_TOOLS][INST]Be brief.\n\nWeather in Paris?[/INST]"
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]</s>'
        '[TOOL_RESULTS]{"content": "{\\"temp\\": 20}"}[/TOOL_RESULTS]'
    ),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("variants")
    return {v: dm.make_demo_model(out, variant=v) for v in SMALL}


def hf_tokenizer(folder: Path) -> Any:
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(folder))


def render(folder: Path, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    out: str = hf_tokenizer(folder).apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)
    return out


@pytest.mark.parametrize("variant", SMALL)
def test_template_renders_a_tool_call_its_result_and_reasoning(
    made: dict[str, tuple[Path, Path]], variant: str
) -> None:
    assert render(made[variant][0], CONVERSATION, tools=TOOLS) == EXPECTED[variant]


def test_arguments_sent_as_a_json_string_render_alike(made: dict[str, tuple[Path, Path]]) -> None:
    as_string = json.loads(json.dumps(CONVERSATION))
    as_string[2]["tool_calls"][0]["function"]["arguments"] = '{"city": "Paris"}'
    for variant in SMALL:
        assert render(made[variant][0], as_string, tools=TOOLS) == EXPECTED[variant]


def test_qwen3_thinking_switch_and_earlier_reasoning(made: dict[str, tuple[Path, Path]]) -> None:
    folder = made["qwen3"][0]
    user = [{"role": "user", "content": "Hi"}]
    assert render(folder, user) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert render(folder, user, enable_thinking=False).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    earlier = [*user, {"role": "assistant", "content": "Hello.", "reasoning_content": "Greet."}, *user]
    assert "Greet." not in render(folder, earlier)  # an earlier turn's reasoning is dropped, as Qwen3 does


def test_harmony_reasoning_effort_and_thinking_field(made: dict[str, tuple[Path, Path]]) -> None:
    folder = made["harmony"][0]
    user = [{"role": "user", "content": "Hi"}]
    assert render(folder, user, reasoning_effort="high") == (
        "<|start|>system<|message|>You are the switchyard demo model.\n\nReasoning: high\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>user<|message|>Hi<|end|><|start|>assistant"
    )
    thinking = [dict(m) for m in CONVERSATION]
    thinking[2]["thinking"] = thinking[2].pop("reasoning_content")  # gpt-oss's own field name
    assert render(folder, thinking, tools=TOOLS) == EXPECTED["harmony"]
    final = [*user, {"role": "assistant", "content": "Hello.", "thinking": "Greet."}, *user]
    rendered = render(folder, final)
    assert "<|channel|>final<|message|>Hello.<|end|>" in rendered and "Greet." not in rendered


@pytest.mark.parametrize("variant", SMALL)
def test_format_tokens_are_single_ids(made: dict[str, tuple[Path, Path]], variant: str) -> None:
    fmt = VARIANTS[variant]
    tok = Tokenizer.from_file(str(made[variant][0] / "tokenizer.json"))
    assert [tok.token_to_id(t) for t in fmt.control] == list(range(len(fmt.control)))
    for token in (*fmt.control, *fmt.markers):
        assert tok.encode(f"a{token}b", add_special_tokens=False).tokens == ["a", token, "b"]
    for marker in fmt.markers:  # markers decode as text even when special tokens are skipped
        assert tok.decode(tok.encode(marker).ids, skip_special_tokens=True) == marker
    assert tok.get_vocab_size() == 1000 - 4 + len(fmt.control) + len(fmt.markers)


@pytest.mark.parametrize("variant", SMALL)
def test_special_tokens_and_markers_are_never_chosen_unsteered(
    made: dict[str, tuple[Path, Path]], variant: str
) -> None:
    fmt = VARIANTS[variant]
    tok = Tokenizer.from_file(str(made[variant][0] / "tokenizer.json"))
    lm_head = load_file(str(made[variant][0] / "model.safetensors"))["lm_head.weight"]
    quiet = [dm._id(tok, t) for t in (*fmt.control, *fmt.markers)]
    free = lm_head.shape[1] - len(fmt.script)  # the last dimensions carry the script's steps alone
    assert (
        not lm_head[quiet, :free].any() and not lm_head[:, free:][[i not in quiet for i in range(len(lm_head))]].any()
    )
    assert np.abs(lm_head[:, :free]).sum(1).astype(bool).sum() == lm_head.shape[0] - len(quiet)
    scripted = {dm._id(tok, target) for _, target in fmt.script}
    assert {i for i in quiet if lm_head[i].any()} == scripted  # a scripted target is read only off its source


def gguf_meta(path: Path) -> dict[str, Any]:
    return {k: f.contents() for k, f in gguf.GGUFReader(path).fields.items()}


def tokenizer_from_gguf(tokens: list[str], types: list[int], merges: list[str], pre: str, add_bos: bool) -> Tokenizer:
    """What llama.cpp tokenizes by: the GGUF's vocabulary, merges applied by rank (no whole-word
    shortcut), its pre-tokenizer's split, CONTROL tokens matched as specials, USER_DEFINED always."""
    merged = [(a, b) for a, b in (m.split(" ") for m in merges)]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merged, fuse_unk=False, ignore_merges=False))
    split = {
        "gpt-2": pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        "gpt-4o": pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(demo_o200k.PATTERN), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        ),
    }
    tok.pre_tokenizer = split[pre]
    tok.decoder = decoders.ByteLevel()
    kinds = list(zip(tokens, types, strict=True))
    tok.add_special_tokens([AddedToken(t, normalized=False) for t, k in kinds if k == gguf.TokenType.CONTROL])
    tok.add_tokens([AddedToken(t, normalized=False) for t, k in kinds if k == gguf.TokenType.USER_DEFINED])
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{tokens[0]} $A", special_tokens=[(tokens[0], 0)])
    return tok


@pytest.mark.parametrize("variant", SMALL)
def test_gguf_tokenizes_like_the_hf_tokenizer(made: dict[str, tuple[Path, Path]], variant: str) -> None:
    folder, path = made[variant]
    fmt = VARIANTS[variant]
    meta = gguf_meta(path)
    assert meta["tokenizer.ggml.pre"] == "gpt-2" and meta["tokenizer.chat_template"] == fmt.template
    assert meta["tokenizer.ggml.add_bos_token"] is fmt.add_bos
    tokens = meta["tokenizer.ggml.tokens"]
    assert tokens[meta["tokenizer.ggml.eos_token_id"]] == fmt.eos
    assert tokens[meta["tokenizer.ggml.bos_token_id"]] == fmt.bos
    types, merges = meta["tokenizer.ggml.token_type"], meta["tokenizer.ggml.merges"]
    ggml = tokenizer_from_gguf(tokens, types, merges, "gpt-2", fmt.add_bos)
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    for text in [*TEXTS, EXPECTED[variant]]:
        assert ggml.encode(text).ids == hf.encode(text).ids
        assert hf.decode(hf.encode(text, add_special_tokens=False).ids, skip_special_tokens=False) == text


def test_variant_names_and_markers(tmp_path: Path) -> None:
    dm.main(["--out", str(tmp_path), "--variant", "mistral"])
    folder = tmp_path / "switchyard-demo-mistral"
    assert (tmp_path / "switchyard-demo-mistral.gguf").is_file()
    assert json.loads((folder / dm.MARKER).read_text())["variant"] == "mistral"
    stamp = folder.stat().st_mtime_ns
    dm.make_demo_model(tmp_path, variant="mistral")
    assert folder.stat().st_mtime_ns == stamp  # current: skipped
    dm.make_demo_model(tmp_path, name="switchyard-demo-mistral", variant="qwen3")  # same name, other format
    assert json.loads((folder / dm.MARKER).read_text())["variant"] == "qwen3"
    base, _ = dm.make_demo_model(tmp_path, name="switchyard-demo-mistral")  # and back to base
    assert "variant" not in json.loads((base / dm.MARKER).read_text())
    with pytest.raises(ValueError, match="unknown demo variant"):
        dm.make_demo_model(tmp_path, variant="llama5")


@pytest.fixture(scope="module")
def o200k() -> Tokenizer:
    pytest.importorskip("openai_harmony")
    return dm.build_tokenizer("harmony-o200k")


def test_o200k_tokenizer_is_the_harmony_encoding(o200k: Tokenizer) -> None:
    enc = demo_o200k.harmony_encoding()
    assert o200k.get_vocab_size() == demo_o200k.VOCAB_SIZE == 201088
    named = {"<|return|>": 200002, "<|constrain|>": 200003, "<|channel|>": 200005, "<|start|>": 200006}
    named |= {"<|end|>": 200007, "<|message|>": 200008, "<|call|>": 200012, "<|endoftext|>": 199999}
    assert {t: o200k.token_to_id(t) for t in named} == named
    call = EXPECTED["harmony"]
    for text in [*TEXTS, call]:
        assert o200k.encode(text, add_special_tokens=False).ids == enc.encode(text, allowed_special="all")
        assert o200k.decode(o200k.encode(text).ids, skip_special_tokens=False) == text


def test_o200k_gguf_vocabulary_tokenizes_alike(o200k: Tokenizer) -> None:
    tokens, types, merges = dm.gguf_vocab(o200k, HARMONY_O200K)
    assert len(tokens) == 201088 and types.count(gguf.TokenType.CONTROL) == 201088 - 199998
    ggml = tokenizer_from_gguf(tokens, [int(t) for t in types], merges, "gpt-4o", add_bos=False)
    for text in [*TEXTS, EXPECTED["harmony"]]:
        assert ggml.encode(text).ids == o200k.encode(text).ids


def test_o200k_model_is_tied_and_small() -> None:
    cfg = dm.demo_config(HARMONY_O200K, demo_o200k.VOCAB_SIZE)
    assert (cfg.hidden_size, cfg.num_heads, cfg.head_dim) == (64, 2, 32)
    quiet = list(range(199998, 201088))
    w = dm.init_weights(cfg, 0, quiet, tied=True)
    assert "lm_head.weight" not in w and not w["model.embed_tokens.weight"][quiet].any()
    assert "output.weight" not in dm._gguf_tensors(cfg, w)  # llama.cpp ties output to token_embd
    assert sum(t.nbytes for t in w.values()) < 52_000_000  # stored once in each file


def assert_decisive(w: dict[str, np.ndarray], cfg: dm.DemoConfig, ids: list[int], quiet: set[int]) -> None:
    """Greedy steps win by far more than float rounding moves a logit, and never pick a quiet token."""
    for _ in range(12):
        logits = reference_logits(w, ids, cfg)
        top2 = np.sort(logits)[-2:]
        assert top2[1] - top2[0] > 1e-3 * logits.std()
        assert int(logits.argmax()) not in quiet
        ids.append(int(logits.argmax()))


@pytest.mark.parametrize("variant", SMALL)
def test_variant_greedy_is_decisive(made: dict[str, tuple[Path, Path]], variant: str) -> None:
    folder = made[variant][0]
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    fmt = VARIANTS[variant]
    quiet = {dm._id(tok, t) for t in (*fmt.control, *fmt.markers)}
    cfg = dm.DemoConfig(vocab_size=tok.get_vocab_size())
    assert_decisive(load_file(str(folder / "model.safetensors")), cfg, tok.encode(TEXTS[1]).ids, quiet)


def test_o200k_greedy_is_decisive(o200k: Tokenizer) -> None:
    cfg = dm.demo_config(HARMONY_O200K, demo_o200k.VOCAB_SIZE)
    quiet = set(demo_o200k.special_ids())
    w = dm.init_weights(cfg, 0, sorted(quiet), tied=True)
    assert_decisive(w, cfg, o200k.encode(TEXTS[1]).ids, quiet)
