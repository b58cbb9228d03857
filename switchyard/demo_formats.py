"""Chat formats of the demo model's variants: their special tokens and chat templates.

Each variant speaks one model family's format so that the engines' own format machinery
(llama-server's chat parsers, vLLM's tool and reasoning parsers) has something real to parse:

- ``qwen3``: Qwen3 thinking (``<think>``) and Hermes tools (``<tool_call>`` JSON), ChatML turns.
- ``harmony``: gpt-oss harmony (``<|start|>``, ``<|channel|>`` ...), small vocabulary.
- ``harmony-o200k``: the same template over the o200k_harmony vocabulary, whose ids vLLM's
  harmony path (openai_harmony's parser) needs.
- ``mistral``: Mistral's pre-v11 tools, ``[TOOL_CALLS][{"name": ..., "arguments": ...}]``.

The templates are written here, for this project: minimal jinja that produces each format, not
copies of any model's template. Every piece of output is a ``{{ }}`` expression and no text lies
between tags, so transformers' jinja (trim_blocks) and llama.cpp's render byte for byte alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

BASE = "base"

# The base demo's tokens and template (its bytes are fixed: see FORMAT_VERSION in demo_model).
BOS, EOS, IM_START, IM_END = "<s>", "</s>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [BOS, EOS, IM_START, IM_END]  # ids 0..3, in this order
# ChatML-like; only plain jinja so both transformers and llama.cpp's engine render it.
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"  # single tokens, plain text (not special)
# ChatML-like, Hermes/Qwen-style tools; only plain jinja, so that both transformers and
# llama.cpp's engine render it. Without tools or tool calls it renders exactly as plain ChatML.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}{{ '<|im_start|>system\\n' }}"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\\n\\n' }}{% endif %}"
    "{{ 'You may call functions:\\n' }}"
    "{% for tool in tools %}{{ '- ' + tool['function']['name'] + ': ' + tool['function']['description'] + '\\n' }}"
    "{% endfor %}"
    '{{ \'To call one, answer <tool_call>{\\"name\\": ..., \\"arguments\\": {...}}</tool_call>.<|im_end|>\\n\' }}'
    "{% endif %}"
    "{% for message in messages %}"
    "{% if not (tools and loop.first and message['role'] == 'system') %}"
    "{% if message['role'] == 'tool' %}"
    "{{ '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
    "{% if message['tool_calls'] is defined and message['tool_calls'] %}{% for call in message['tool_calls'] %}"
    "{{ '<tool_call>{\\\"name\\\": \\\"' + call['function']['name'] + '\\\", \\\"arguments\\\": ' }}"
    "{{ call['function']['arguments'] | tojson }}{{ '}</tool_call>' }}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endif %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Shared jinja pieces: the index of the last user message (reasoning of assistant turns after it
# is the current turn's and is rendered; earlier turns' reasoning is dropped, as Qwen3 and
# harmony do), and a tool call's arguments, which clients send as a JSON string or an object.
_LAST_USER = (
    "{%- set ns = namespace(last_user=-1, call='') -%}"
    "{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.last_user = loop.index0 -%}"
    "{%- endif -%}{%- endfor -%}"
)
_ARGS = (
    "{%- set args = call['function']['arguments'] -%}"
    "{%- if args is not string -%}{%- set args = args | tojson -%}{%- endif -%}"
)
_REASONING = (
    "{%- set reasoning = '' -%}"
    "{%- if m['reasoning_content'] is defined and m['reasoning_content'] -%}"
    "{%- set reasoning = m['reasoning_content'] -%}{%- endif -%}"
)

# Qwen3 hybrid thinking with Hermes tool calls in ChatML turns. ``enable_thinking=false`` puts
# an empty think block after the generation prompt; tool results are user turns of
# <tool_response> blocks, consecutive results sharing one turn. Calls are written without the
# newlines Qwen3 puts inside <tool_call>: llama-server's lazy tool grammar then triggers on the
# single <tool_call> token, so a logit bias on that token alone steers a random model into a call.
QWEN3_TEMPLATE = (
    _LAST_USER + "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}{{- messages[0]['content'] + '\\n\\n' -}}{%- endif -%}"
    "{{- '# Tools\\n\\nYou can call these functions, each described by a JSON signature:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nTo call one, write its name and arguments as a JSON object between tool_call tags:\\n'"
    ' + \'<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call><|im_end|>\\n\' -}}'
    "{%- elif messages and messages[0]['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' or (m['role'] == 'system' and not loop.first) -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- elif m['role'] == 'assistant' -%}" + _REASONING + "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if reasoning and loop.index0 > ns.last_user -%}"
    "{{- '<think>\\n' + (reasoning | trim) + '\\n</think>\\n\\n' -}}{%- endif -%}"
    "{{- m['content'] or '' -}}"
    "{%- if m['tool_calls'] is defined and m['tool_calls'] -%}{%- for call in m['tool_calls'] -%}" + _ARGS + ""
    "{{- '<tool_call>{\"name\": \"' + call['function']['name'] + '\", \"arguments\": ' + args + '}</tool_call>' -}}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- elif m['role'] == 'tool' -%}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + m['content'] + '\\n</tool_response>' -}}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    "{%- endif -%}"
)

# gpt-oss harmony: a system message with the reasoning effort and the channels, a developer
# message with the instructions and the functions, analysis (reasoning) / commentary (tool
# calls, preambles) / final (answer) channels, tool results from ``functions.NAME``. The
# reasoning of the current turn's assistant messages is rendered as analysis, from ``thinking``
# (the family's field) or ``reasoning_content``.
HARMONY_TEMPLATE = (
    _LAST_USER + "{%- set effort = 'medium' -%}"
    "{%- if reasoning_effort is defined and reasoning_effort -%}{%- set effort = reasoning_effort -%}{%- endif -%}"
    "{{- '<|start|>system<|message|>You are the switchyard demo model.\\n\\nReasoning: ' + effort"
    " + '\\n\\n# Valid channels: analysis, commentary, final. Channel must be included for every message.' -}}"
    "{%- if tools -%}{{- \"\\nCalls to these tools must go to the commentary channel: 'functions'.\" -}}{%- endif -%}"
    "{{- '<|end|>' -}}"
    "{%- set system = messages and messages[0]['role'] in ['system', 'developer'] -%}"
    "{%- if system or tools -%}{{- '<|start|>developer<|message|>' -}}"
    "{%- if system -%}{{- '# Instructions\\n\\n' + messages[0]['content'] -}}"
    "{%- if tools -%}{{- '\\n\\n' -}}{%- endif -%}{%- endif -%}"
    "{%- if tools -%}{{- '# Tools\\n\\n## functions\\n\\nnamespace functions {\\n\\n' -}}"
    "{%- for tool in tools -%}{%- set f = tool['function'] -%}"
    "{%- if f['description'] is defined and f['description'] -%}{{- '// ' + f['description'] + '\\n' -}}{%- endif -%}"
    "{{- 'type ' + f['name'] + ' = (_: ' -}}"
    "{%- if f['parameters'] is defined -%}{{- f['parameters'] | tojson -}}{%- else -%}{{- '{}' -}}{%- endif -%}"
    "{{- ') => any;\\n\\n' -}}"
    "{%- endfor -%}{{- '} // namespace functions' -}}{%- endif -%}"
    "{{- '<|end|>' -}}{%- endif -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}{{- '<|start|>user<|message|>' + m['content'] + '<|end|>' -}}"
    "{%- elif m['role'] == 'assistant' -%}" + _REASONING + ""
    "{%- if m['thinking'] is defined and m['thinking'] -%}{%- set reasoning = m['thinking'] -%}{%- endif -%}"
    "{%- if reasoning and loop.index0 > ns.last_user -%}"
    "{{- '<|start|>assistant<|channel|>analysis<|message|>' + reasoning + '<|end|>' -}}{%- endif -%}"
    "{%- if m['tool_calls'] is defined and m['tool_calls'] -%}"
    "{%- if m['content'] -%}{{- '<|start|>assistant<|channel|>commentary<|message|>' + m['content'] + '<|end|>' -}}"
    "{%- endif -%}"
    "{%- for call in m['tool_calls'] -%}" + _ARGS + "{%- set ns.call = call['function']['name'] -%}"
    "{{- '<|start|>assistant<|channel|>commentary to=functions.' + ns.call + ' <|constrain|>json<|message|>'"
    " + args + '<|call|>' -}}"
    "{%- endfor -%}"
    "{%- elif m['content'] -%}{{- '<|start|>assistant<|channel|>final<|message|>' + m['content'] + '<|end|>' -}}"
    "{%- endif -%}"
    "{%- elif m['role'] == 'tool' -%}"
    "{%- set name = ns.call -%}{%- if m['name'] is defined and m['name'] -%}{%- set name = m['name'] -%}{%- endif -%}"
    "{{- '<|start|>functions.' + name + ' to=assistant<|channel|>commentary<|message|>' + m['content'] + '<|end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start|>assistant' -}}{%- endif -%}"
)

# Mistral's tool format before its v11 tokenizers (7B v0.3, Nemo): the tools as a JSON list in
# [AVAILABLE_TOOLS] before the last user turn, the system prompt inside that turn, calls as a
# JSON list after [TOOL_CALLS], results in [TOOL_RESULTS]. No reasoning, no generation prompt.
MISTRAL_TEMPLATE = (
    _LAST_USER + "{%- set system = '' -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}{%- set system = messages[0]['content'] -%}{%- endif -%}"
    "{{- bos_token -}}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}"
    "{%- if tools and loop.index0 == ns.last_user -%}"
    "{{- '[AVAILABLE_TOOLS]' + (tools | tojson) + '[/AVAILABLE_TOOLS]' -}}{%- endif -%}"
    "{{- '[INST]' -}}"
    "{%- if system and loop.index0 == ns.last_user -%}{{- system + '\\n\\n' -}}{%- endif -%}"
    "{{- m['content'] + '[/INST]' -}}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{{- m['content'] or '' -}}"
    "{%- if m['tool_calls'] is defined and m['tool_calls'] -%}{{- '[TOOL_CALLS][' -}}"
    "{%- for call in m['tool_calls'] -%}" + _ARGS + "{%- if not loop.first -%}{{- ', ' -}}{%- endif -%}"
    "{{- '{\"name\": \"' + call['function']['name'] + '\", \"arguments\": ' + args + '}' -}}"
    "{%- endfor -%}{{- ']' -}}{%- endif -%}"
    "{{- eos_token -}}"
    "{%- elif m['role'] == 'tool' -%}"
    "{{- '[TOOL_RESULTS]{\"content\": ' + (m['content'] | tojson) + '}[/TOOL_RESULTS]' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
)


@dataclass(frozen=True)
class ChatFormat:
    """What a variant's tokenizer and files carry for its format.

    ``control`` are special tokens (CONTROL in GGUF, ``special`` in Hugging Face; vLLM drops them
    from text unless a parser keeps them) with ids 0.. in this order; ``markers`` are added
    tokens that decode as text (USER_DEFINED in GGUF), as Qwen's ``<think>`` and ``<tool_call>``
    are. ``quiet_markers``: the markers' lm_head rows are zero too, so that random weights never
    emit them and only steering does (the base demo predates this and keeps its bytes).
    """

    key: str
    control: tuple[str, ...]
    markers: tuple[str, ...]
    bos: str
    add_bos: bool
    eos: str
    stops: tuple[str, ...]  # every end-of-generation token; generation_config's eos_token_id
    eot: str | None
    template: str
    quiet_markers: bool = True
    o200k: bool = False  # the o200k_harmony vocabulary instead of the small trained one
    # Greedy steps the weights make by construction (token text -> the token after it), so that
    # a plain greedy request gives the engines' parsers a real answer in the format to read;
    # each text must be one token (the longer ones are markers).
    script: tuple[tuple[str, str], ...] = ()
    # The same as one run: after the token of the first text, the tokens of the second in turn
    # (for a vocabulary that spells the answer in many tokens; each may come once only).
    script_run: tuple[str, str] | None = None

    @property
    def named_specials(self) -> list[str]:
        """The control tokens that tokenizer_config lists besides BOS and EOS."""
        return [t for t in self.control if t not in (self.bos, self.eos)]


# What the scripted variants answer, each one token: a thought, an answer, a call.
THOUGHT = "The user asks for the weather."
ANSWER = "Let me check."
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
QWEN3 = ChatFormat(
    key="qwen3",
    control=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    markers=(
        "<think>",
        "</think>",
        "<tool_call>",
        "</tool_call>",
        "<tool_response>",
        "</tool_response>",
        THOUGHT,
        ANSWER,
        CALL,
    ),
    # after the generation prompt ("...assistant\n"): think, answer, call get_weather, end the turn
    script=(
        ("\n", "<think>"),
        ("<think>", THOUGHT),
        (THOUGHT, "</think>"),
        ("</think>", ANSWER),
        (ANSWER, "<tool_call>"),
        ("<tool_call>", CALL),
        (CALL, "</tool_call>"),
        ("</tool_call>", "<|im_end|>"),
    ),
    bos="<|endoftext|>",
    add_bos=False,
    eos="<|im_end|>",
    stops=("<|im_end|>", "<|endoftext|>"),
    eot="<|im_end|>",
    template=QWEN3_TEMPLATE,
)
# Named harmony tokens, in o200k_harmony's id order (199998, 199999, 200002, 200003, 200005-8, 200012).
HARMONY_TOKENS = (
    "<|startoftext|>", "<|endoftext|>", "<|return|>", "<|constrain|>",
    "<|channel|>", "<|start|>", "<|end|>", "<|message|>", "<|call|>",
)  # fmt: skip
HARMONY = ChatFormat(
    key="harmony",
    control=HARMONY_TOKENS,
    markers=(),
    bos="<|startoftext|>",
    add_bos=False,
    eos="<|return|>",
    stops=("<|return|>", "<|call|>", "<|endoftext|>"),
    eot="<|return|>",
    template=HARMONY_TEMPLATE,
)
# The same format over gpt-oss's own vocabulary, where the named tokens sit at their o200k ids.
# Its script calls get_weather in harmony's commentary channel (no analysis first: a scripted
# token has one successor, and analysis then commentary would repeat <|channel|>).
HARMONY_O200K = replace(
    HARMONY,
    key="harmony-o200k",
    o200k=True,
    script_run=(
        "assistant",
        '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>',
    ),
)
MISTRAL_TOKENS = (
    "<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]",
    "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]",
)  # fmt: skip
MISTRAL = ChatFormat(
    key="mistral",
    control=MISTRAL_TOKENS,
    markers=(ANSWER, f"[{CALL}]"),
    script=(("[/INST]", ANSWER), (ANSWER, "[TOOL_CALLS]"), ("[TOOL_CALLS]", f"[{CALL}]"), (f"[{CALL}]", "</s>")),
    bos="<s>",
    add_bos=True,
    eos="</s>",
    stops=("</s>",),
    eot=None,
    template=MISTRAL_TEMPLATE,
)
# The base demo's format: ChatML-ish with Hermes-style tool tags as plain-text tokens.
BASE_FORMAT = ChatFormat(
    key=BASE,
    control=tuple(SPECIAL_TOKENS),
    markers=(TOOL_OPEN, TOOL_CLOSE),
    bos=BOS,
    add_bos=True,
    eos=EOS,
    stops=(EOS, IM_END),
    eot=IM_END,
    template=CHAT_TEMPLATE,
    quiet_markers=False,
)
VARIANTS: dict[str, ChatFormat] = {f.key: f for f in (QWEN3, HARMONY, HARMONY_O200K, MISTRAL)}


def chat_format(variant: str) -> ChatFormat:
    """The format of a variant name (``base`` or one of demo_formats.VARIANTS)."""
    if variant == BASE:
        return BASE_FORMAT
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown demo variant {variant!r}; known: {', '.join([BASE, *VARIANTS])}") from None
