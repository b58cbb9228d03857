"""Enum values a request may carry: proto3 keeps unknown numbers (a newer client, or a
hand-made one), so each service checks them once, naming the field, instead of treating an
unknown engine as "any" or failing later with an INTERNAL error."""

from __future__ import annotations

from google.protobuf.message import Message

from switchyard.errors import InvalidArgument


def check_enums(message: Message, prefix: str = "") -> None:
    """InvalidArgument for the first enum field, at any depth, holding an undefined number."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.enum_type is not None:
            known = field.enum_type.values_by_number
            for number in value if field.is_repeated else [value]:
                if number not in known:
                    allowed = ", ".join(f"{v.number} ({v.name})" for v in field.enum_type.values)
                    raise InvalidArgument(f"{name} {number} is not a known value; one of {allowed}")
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in value if field.is_repeated else [value]:
                check_enums(item, f"{name}.")
