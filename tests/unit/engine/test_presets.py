"""The models file: its schema (every error names the file, the model and the key), the loads
its presets stand for, a reload's changes, and a load through the API merged over a preset."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from switchyard.engine.presets import PresetError, PresetFile, merged, parse
from switchyard.v1 import common_pb2
from switchyard.v1 import control_pb2 as pb

GOOD = """
models:
  short:
    engine: llamacpp
    source: switchyard-demo.gguf
    aliases: [s]
    keep_alive_s: 300
    preload: true
    tool_parser: none
    options: {ctx_size: 1024, flash_attn: FLASH_ATTENTION_OFF}
  small-vllm:
    engine: vllm
    source: hf:Org/Repo
    task: embed
    pooling: cls
    options: {max_model_len: 512, dtype: float32}
"""


def test_a_preset_is_the_load_it_stands_for() -> None:
    presets = parse(GOOD, "models.yaml")
    short = presets["short"]
    assert short.preload
    request = short.request
    assert request.engine == common_pb2.ENGINE_LLAMACPP and request.model_path == "switchyard-demo.gguf"
    assert request.served_model_name == "short" and list(request.aliases) == ["s"]
    assert request.keep_alive_s == 300 and request.tool_parser == "none"
    assert request.llamacpp.ctx_size == 1024 and request.llamacpp.flash_attn == pb.FLASH_ATTENTION_OFF
    embed = presets["small-vllm"].request
    assert embed.task == pb.MODEL_TASK_EMBED and embed.pooling == pb.POOLING_CLS and embed.vllm.max_model_len == 512
    assert not embed.HasField("keep_alive_s")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("models: [1, 2]", "models:"),
        ("models:\n  m: {engine: tgi, source: a}", "models.m.engine:"),
        ("models:\n  m: {engine: vllm}", "models.m.source:"),
        ("models:\n  m: {engine: vllm, source: a, keepalive: 3}", "models.m.keepalive:"),
        ("models:\n  m: {engine: vllm, source: a, keep_alive_s: -1}", "models.m.keep_alive_s:"),
        ("models:\n  m: {engine: vllm, source: a, options: {ctx_size: 5}}", "models.m.options:"),
        ("models:\n  m: {engine: llamacpp, source: a, options: {ctx_size: many}}", "models.m.options:"),
        ("models:\n  '../x': {engine: vllm, source: a}", "model name '../x'"),
        ("models:\n  a: {engine: vllm, source: a}\n  b: {engine: vllm, source: b, aliases: [a]}", "both a and b"),
        ("models: {m: {engine: vllm, source: a", "not YAML"),
        ("surprise: 1", "surprise:"),
    ],
)
def test_every_error_names_the_file_and_the_key(text: str, words: str) -> None:
    with pytest.raises(PresetError) as info:
        parse(text, "models.yaml")
    assert str(info.value).startswith("models.yaml: ") and words in str(info.value), info.value


def test_one_name_may_serve_on_each_engine() -> None:
    text = "models:\n  a: {engine: vllm, source: a}\n  b: {engine: llamacpp, source: b.gguf, aliases: [a2]}"
    assert set(parse(text, "f")) == {"a", "b"}


def test_a_reload_says_what_changed_and_a_bad_edit_keeps_the_last_good_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(GOOD)
    presets = PresetFile.open(path, "llamacpp")
    assert set(presets.presets) == {"short"} and presets.preloads() == ["short"]
    assert presets.reload() is None  # unchanged
    path.write_text(
        GOOD.replace("ctx_size: 1024", "ctx_size: 2048") + "  more:\n    engine: llamacpp\n    source: b.gguf\n"
    )
    assert presets.reload() == ({"short", "more"}, {"short"})
    found = presets.find("s")
    assert found is not None and found.llamacpp.ctx_size == 2048  # by alias
    with caplog.at_level(logging.ERROR):
        path.write_text("models: {broken")
        assert presets.reload() is None and presets.reload() is None
    assert set(presets.presets) == {"short", "more"}
    assert len([r for r in caplog.records if "last good one stays" in r.message]) == 1  # said once
    path.unlink()
    assert presets.reload() is None and set(presets.presets) == {"short", "more"}
    path.write_text("models: {}\n")
    assert presets.reload() == (set(), {"short", "more"})


def test_a_bad_file_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="cannot be read"):
        PresetFile.open(tmp_path / "missing.yaml", "vllm")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1024 * 1024))
    with pytest.raises(PresetError, match="larger than"):
        PresetFile.open(big, "vllm")


def test_a_load_naming_a_preset_keeps_what_it_sets_and_the_preset_fills_the_rest() -> None:
    preset = parse(GOOD, "f")["short"].request
    asked = pb.LoadModelRequest(
        engine=common_pb2.ENGINE_LLAMACPP, model_path="/roots/switchyard-demo.gguf", served_model_name="short"
    )
    asked.aliases.append("t")
    asked.llamacpp.ctx_size = 4096
    result = merged(preset, asked)
    assert result.model_path == "/roots/switchyard-demo.gguf" and result.llamacpp.ctx_size == 4096
    assert result.llamacpp.flash_attn == pb.FLASH_ATTENTION_OFF and result.keep_alive_s == 300
    assert list(result.aliases) == ["s", "t"]
