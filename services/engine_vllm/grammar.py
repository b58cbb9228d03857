"""A request's output constraint compiled the way vLLM's guidance backend will compile it,
with the model's own tokenizer, before the request is submitted.

vLLM compiles a grammar in its engine core and, when llguidance reports an error there, only
logs it: the request then answers 200 with a fragment (``{``) or an empty answer. Compiling
here first (the same serialization, the same tokenizer, llguidance's default limits, and the
first token mask, where the lexer does most of its work) turns that into INVALID_ARGUMENT
before any token. Schemas are bounded before this by switchyard/engine/schema_check.py, so no
compile here can grow without bound. Grammars that passed are remembered (a client sends the
same schema again and again).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any

import llguidance
from vllm.v1.structured_output.backend_guidance import GuidanceBackend, serialize_guidance_grammar
from vllm.v1.structured_output.backend_types import StructuredOutputOptions

from switchyard.engine.structured import Constraint
from switchyard.errors import InvalidArgument

REMEMBERED = 256
MAX_ERROR_CHARS = 300


class GrammarCheck:
    def __init__(
        self, tokenizer: Any, vocab_size: int, disable_any_whitespace: bool, disable_additional_properties: bool
    ) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._options = (disable_any_whitespace, disable_additional_properties)
        self._ll: Any = None  # llguidance's view of the tokenizer, built on first use
        self._passed: OrderedDict[str, None] = OrderedDict()
        self._lock = asyncio.Lock()

    async def check(self, constraint: Constraint) -> None:
        """InvalidArgument when llguidance cannot compile the constraint for this model."""
        if constraint.json_object:
            return  # a fixed grammar
        key = json.dumps(constraint.schema, sort_keys=True)
        if key in self._passed:
            self._passed.move_to_end(key)
            return
        async with self._lock:  # one compile at a time: they are CPU-bound
            error = await asyncio.to_thread(self._compile, constraint.schema)
        if error:
            raise InvalidArgument(f"the schema cannot be compiled into a grammar: {error[:MAX_ERROR_CHARS]}")
        self._passed[key] = None
        while len(self._passed) > REMEMBERED:
            self._passed.popitem(last=False)

    def _compile(self, schema: dict[str, Any]) -> str:
        if self._ll is None:
            self._ll = GuidanceBackend._build_ll_tokenizer(self._tokenizer, self._vocab_size)
        try:
            grammar = serialize_guidance_grammar(StructuredOutputOptions.JSON, schema, *self._options)
        except (ValueError, KeyError, TypeError) as exc:
            return str(exc) or type(exc).__name__
        matcher = llguidance.LLMatcher(self._ll, grammar, log_level=0)
        if not matcher.is_error():
            matcher.compute_bitmask()
        return matcher.get_error().splitlines()[0] if matcher.is_error() else ""
