"""Enum values a request may carry: proto3 keeps unknown numbers (a newer client, or a
hand-made one), so each service checks them once, naming the field, instead of treating an
unknown engine as "any" or failing later with an INTERNAL error.

Per request only the fields that can hold an enum are looked at: which ones those are is worked
out once per message type (a chat's messages, a tool's schema hold none and are skipped).
"""

from __future__ import annotations

import functools

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from switchyard.errors import InvalidArgument


def _holds_enums(descriptor: Descriptor, visiting: frozenset[str] = frozenset()) -> bool:
    if descriptor.full_name in visiting:  # a recursive type (google.protobuf.Struct) adds none
        return False
    inner = visiting | {descriptor.full_name}
    return any(
        field.enum_type is not None or (field.message_type is not None and _holds_enums(field.message_type, inner))
        for field in descriptor.fields
    )


@functools.cache
def _enum_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields of a message type that are enums or messages that can hold one."""
    return tuple(
        field
        for field in descriptor.fields
        if field.enum_type is not None
        or (
            field.message_type is not None
            and not field.message_type.GetOptions().map_entry
            and _holds_enums(field.message_type)
        )
    )


def check_enums(message: Message, prefix: str = "") -> None:
    """InvalidArgument for the first enum field, at any depth, holding an undefined number."""
    for field in _enum_fields(message.DESCRIPTOR):
        values = getattr(message, field.name)
        if field.enum_type is not None:
            known = field.enum_type.values_by_number
            for number in values if field.is_repeated else [values]:
                if number not in known:
                    allowed = ", ".join(f"{v.number} ({v.name})" for v in field.enum_type.values)
                    raise InvalidArgument(f"{prefix}{field.name} {number} is not a known value; one of {allowed}")
        elif field.is_repeated:
            for item in values:
                check_enums(item, f"{prefix}{field.name}.")
        elif message.HasField(field.name):
            check_enums(values, f"{prefix}{field.name}.")
