"""How log records are written: one JSON object per line (the default for the services, for a log
pipeline) or one line of text (the default of the embedded mode, for a person at a terminal), both
with the record's context (``log_context``: request, tenant, payment, event) and trace ids, and both
with every secret masked (``redaction``).

``BILLING_LOG_FORMAT=json|text`` overrides the default; ``configure_logging`` installs the format on
the root logger (stderr)."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Literal

from billing_runtime.log_context import FIELDS, log_context
from billing_runtime.redaction import redact
from billing_runtime.tracing import current_ids

LogFormat = Literal["json", "text"]
FORMAT_ENV = "BILLING_LOG_FORMAT"


def _context(record: logging.LogRecord) -> dict[str, str]:
    """The record's context: what is bound now, plus fields passed with ``extra=`` (which win)."""
    fields = dict(log_context())
    for name in FIELDS:
        value = record.__dict__.get(name)
        if isinstance(value, str) and value:
            fields[name] = value
    ids = current_ids()
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", <context>, "trace_id", "span_id", "exc"?}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_context(record),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``<time> <level> <logger>: <message> [request_id=... trace_id=...]``, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _context(record)
        fields.pop("span_id", None)
        if fields:
            text += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return redact(text)


def log_format(default: LogFormat, environ: dict[str, str] | None = None) -> LogFormat:
    value = (os.environ if environ is None else environ).get(FORMAT_ENV, "").strip().lower()
    if value == "json":
        return "json"
    if value == "text":
        return "text"
    return default


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


# Wire-level loggers of the AMQP client: at DEBUG they dump every frame, i.e. every event's body with
# the payer's email and links; never below INFO, whatever the level.
QUIET_AT_DEBUG = ("aiormq", "aio_pika")


def configure_logging(level: str = "INFO", *, default_format: LogFormat = "json") -> None:
    """The root logger at ``level``, writing to stderr in ``BILLING_LOG_FORMAT`` (else ``default_format``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format(default_format)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if root.level < logging.INFO:
        for name in QUIET_AT_DEBUG:
            logging.getLogger(name).setLevel(logging.INFO)
