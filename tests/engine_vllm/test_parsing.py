"""vLLM's own parsers behind the engine's adapter, on the demo tokenizer and recorded output
split at every token boundary (no engine started): reasoning, text and calls apart; the
parsers a template's markers point at."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from switchyard.engine.params import ChatParams
from switchyard.engine.structured import Function, ToolPlan
from switchyard.errors import InvalidArgument
from switchyard.v1 import control_pb2
from switchyard.v1 import inference_pb2 as pb
from tests.conformance.engines import VLLM_AVAILABLE

pytestmark = pytest.mark.skipif(not VLLM_AVAILABLE, reason="vLLM is not installed (make test installs it)")


@pytest.fixture(scope="module", autouse=True)
def vllm_imported() -> None:
    """vLLM in this process: its import warns of torch's own deprecations, which are not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import services.engine_vllm.parsing  # noqa: F401


WEATHER = Function("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}}, False)
OUTPUT = '<think>plan it</think>Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


@pytest.mark.parametrize(
    ("template", "parsers"),
    [
        ("<|im_start|>... <tool_call> ... <think>", ("hermes", "qwen3")),
        ("<tool_call><function=x><parameter=y>", ("qwen3_xml", None)),
        ("[AVAILABLE_TOOLS] [TOOL_CALLS]", ("mistral", None)),
        ("<|start_header_id|>ipython<|end_header_id|>", ("llama3_json", None)),
        ("{{ '<think>' }}", (None, "qwen3")),
        ("plain {{ messages }}", (None, None)),
    ],
)
def test_a_template_points_at_its_parsers(template: str, parsers: tuple[str | None, str | None]) -> None:
    from services.engine_vllm.parsing import from_template

    assert from_template(template) == parsers


def test_unknown_parser_names_are_refused_before_a_load() -> None:
    from services.engine_vllm.parsing import check_names

    check_names(control_pb2.LoadModelRequest(tool_parser="hermes", reasoning_parser="qwen3"))
    with pytest.raises(InvalidArgument, match="tool_parser 'nope'"):
        check_names(control_pb2.LoadModelRequest(tool_parser="nope"))


def test_recorded_output_split_at_every_token(demo_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from services.engine_vllm.parsing import ChatParsing

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir / "switchyard-demo")
    load = control_pb2.LoadModelRequest(tool_parser="hermes", reasoning_parser="qwen3")
    parsing = ChatParsing.for_model(tokenizer, None, load)
    assert parsing is not None and (parsing.tool_parser, parsing.reasoning_parser) == ("hermes", "qwen3")
    chat = ChatParams([{"role": "user", "content": "weather?"}], (WEATHER,), ToolPlan("auto", (WEATHER,)), True)
    request = parsing.start(chat)
    assert not request.skip_special_tokens  # the markers must reach the parser as text
    ids = tokenizer.encode(OUTPUT, add_special_tokens=False)
    deltas: list[pb.Delta] = []
    previous = ""
    for i in range(len(ids)):
        text = tokenizer.decode(ids[: i + 1])
        deltas.append(request.delta(text[len(previous) :], [ids[i]], [1, 2, 3], finished=i == len(ids) - 1))
        previous = text
    assert "".join(d.reasoning for d in deltas) == "plan it"
    assert "".join(d.text for d in deltas).strip() == "Sure."
    calls = [c for d in deltas for c in d.tool_calls]
    assert calls[0].name == "get_weather" and calls[0].id.startswith("call_")
    assert "".join(c.arguments for c in calls) == '{"city": "Paris"}'
    assert request.called and request.reasoning_tokens(ids) > 0
