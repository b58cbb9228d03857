"""What any request body must satisfy before its fields are read, whatever the route.

JSON can spell what our wire format cannot carry: a lone surrogate (``"\\ud800"``) is not
UTF-8, ``NaN`` and ``Infinity`` are not JSON numbers for the engines, ``1e400``-sized integers
overflow protobuf's doubles, and deep nesting exceeds protobuf's parse depth at the next hop.
Each is a 400 naming where it is, never a 500 from the encoder.
"""

from __future__ import annotations

import math
from typing import Any

from gateway.errors import ApiError

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
