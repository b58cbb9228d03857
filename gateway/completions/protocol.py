"""The request body of POST /v1/completions and its Generate requests (one per prompt)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from gateway.errors import ApiError
from gateway.fields import Int32, Prompt, TokenPrompt, ranged
from gateway.generation.protocol import GenerationFields
from gateway.openai_fields import COMPLETION_FIELDS
from switchyard.contract import MAX_LOGPROBS
from switchyard.v1 import inference_pb2 as pb


class CompletionRequest(GenerationFields):
    """POST /v1/completions: OpenAI's completion request plus the seed's ``engine``.

    The seed's defaults stay: 128 tokens, temperature 0.7, top_p 0.95.
    """

    openai_fields = COMPLETION_FIELDS

    prompt: Prompt | list[Prompt] | TokenPrompt | list[TokenPrompt] = Field(
        description="a prompt, a list of prompts, a token list or a list of token lists: one choice each (times n)"
    )
    max_tokens: Int32 | None = 128
    temperature: float | None = 0.7
    top_p: float | None = 0.95
    logprobs: Int32 | None = ranged(None, "most likely alternatives per token", minimum=0, maximum=MAX_LOGPROBS)
    echo: bool = Field(False, description="each choice's text starts with its prompt")
    best_of: int | None = Field(None, description="only as many as n: switchyard returns every choice it generates")

    @model_validator(mode="after")
    def _supported(self) -> Self:
        if self.best_of is not None and self.best_of != self.n:
            raise ApiError(400, "best_of other than n is not supported: every choice generated is returned", "best_of")
        if self.echo and self.logprobs is not None:
            raise ApiError(400, "echo with logprobs is not supported (no prompt logprobs)", "echo")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ApiError(400, "prompt is an empty list", "prompt")
        return self

    def prompts(self) -> list[str | list[int]]:
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if prompt and isinstance(prompt[0], int):
            return [[int(t) for t in prompt]]  # one token prompt
        return [p for p in prompt if isinstance(p, str | list)]

    def inputs(self) -> list[pb.GenerateRequest]:
        """One request per prompt."""
        out = []
        for prompt in self.prompts():
            request = self._request(self.max_tokens, self.logprobs)
            if isinstance(prompt, str):
                request.prompt = prompt
            else:
                request.prompt_token_ids.ids.extend(prompt)
            out.append(request)
        return out
