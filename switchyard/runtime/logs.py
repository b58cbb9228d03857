"""Logging setup: one line per record, as text for people or JSON for log collectors.

A record written while a request is served carries its id (``switchyard.request_id``): in
brackets after the logger's name in text, as ``request_id`` in JSON.

Every record is bounded: a message (or traceback) over ``MAX_MESSAGE_CHARS`` is cut, so a
100 KiB request id or model path sent by a client cannot make a log line that a relay or a log
collector chokes on.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from switchyard import request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
MAX_MESSAGE_CHARS = 4096
MAX_TRACEBACK_CHARS = 16384


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text) - limit} more characters cut]"


class BoundedRecords(logging.Filter):
    """Cuts a record's message and traceback to fixed sizes before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_MESSAGE_CHARS:
            record.msg, record.args = _cut(message, MAX_MESSAGE_CHARS), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _cut(logging.Formatter().formatException(record.exc_info), MAX_TRACEBACK_CHARS)
        return True


class RequestIds(logging.Filter):
    """Puts the id of the request being served (if any) on the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current.get()
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", "")
        record.request_tag = f" [{rid}]" if rid else ""
        return super().format(record)


def configure_logging(level: str = "INFO", fmt: str = "text", service: str = "") -> None:
    """Route the root logger to stderr in the chosen format; safe to call more than once."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                static_fields={"service": service} if service else None,
            )
        )
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    handler.addFilter(BoundedRecords())
    handler.addFilter(RequestIds())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; our own request logs say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
