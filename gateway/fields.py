"""What every request body shares, whatever its route: the base class that checks the raw JSON
once, and the field types whose ranges are the contract's (so an out-of-range number is a 400,
not a failed encode). Each endpoint family's ``protocol.py`` builds its bodies from these.

OpenAI's field names and the seed's (``engine``, ``model_path``) are kept as they are. Value
ranges are left to the engines, so that a client gets the same message over HTTP and gRPC;
the request models check shapes and types.

Before its fields are read, a body must hold nothing the wire format cannot carry. JSON can
spell what it cannot: a lone surrogate (``"\\ud800"``) is not UTF-8, ``NaN`` and ``Infinity``
are not JSON numbers for the engines, ``1e400``-sized integers overflow protobuf's doubles, and
deep nesting exceeds protobuf's parse depth at the next hop. Each is a 400 naming where it is,
never a 500 from the encoder (``check_json``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from gateway.errors import ApiError
from gateway.openai_fields import check_extras
from switchyard.engines import ENGINES_BY_NAME
from switchyard.v1 import common_pb2

MAX_DEPTH = 24  # JSON nesting; protobuf parses about 100 message levels, a Struct costs ~3 each
MAX_INT = 2**63


def _where(path: list[str | int]) -> str | None:
    return ".".join(str(part) for part in path) or None


def check_json(value: Any, path: list[str | int] | None = None) -> None:
    """Raise ApiError(400) for the first value a request must not carry."""
    path = path or []
    if len(path) > MAX_DEPTH:
        raise ApiError(400, f"the request nests deeper than {MAX_DEPTH} levels", _where(path))
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ApiError(400, "a string is not valid Unicode (a lone surrogate)", _where(path)) from None
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) >= MAX_INT:
            raise ApiError(400, f"an integer is too large ({value.bit_length()} bits; at most 63)", _where(path))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ApiError(400, f"numbers must be finite, got {value}", _where(path))
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json(key, path)
            check_json(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, [*path, index])


EngineName = Literal["vllm", "llamacpp"]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
TokenId = Annotated[int, Field(ge=0, le=2**32 - 1)]
Prompt = Annotated[str, WithJsonSchema({"type": "string", "minLength": 1})]
TokenPrompt = Annotated[list[TokenId], WithJsonSchema({"type": "array", "items": {"type": "integer"}, "minItems": 1})]


def ranged(default: Any, description: str, **bounds: float) -> Any:
    """A field whose valid range is documented in the schema (``minimum``, ``maximum``,
    ``exclusiveMinimum``) but checked by the engines, so HTTP and gRPC clients get one message."""
    return Field(default, description=description, json_schema_extra=bounds)  # type: ignore[arg-type]


def engine_kind(name: str | None) -> common_pb2.Engine.ValueType:
    """The enum for an optional engine name (absent: any engine)."""
    return ENGINES_BY_NAME[name] if name else common_pb2.ENGINE_UNSPECIFIED


class RequestBody(BaseModel):
    """Base of every request body: the raw JSON is checked once (``check_json``)."""

    @model_validator(mode="before")
    @classmethod
    def _check_json(cls, data: Any) -> Any:
        check_json(data)
        return data


class OpenAIBody(RequestBody):
    """Base of the bodies of OpenAI's routes. Fields not declared are kept, to be refused or
    logged by ``gateway.openai_fields`` against the route's ``openai_fields``: never a 200 for
    a field switchyard drops."""

    model_config = ConfigDict(extra="allow")
    openai_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_silent_drops(self) -> Self:
        check_extras(self.model_extra, self.openai_fields)
        return self
