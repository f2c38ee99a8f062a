"""Structured logs: text for people, JSON lines for log pipelines, secrets masked in both.

- :func:`configure_logging` installs one stderr handler on the root logger (replacing kopf's
  own handler and any earlier one of ours), in ``text`` or ``json`` format.
- :func:`log_context` binds ``namespace``, ``appliance``, ``provider``, ``service``,
  ``operation`` and ``controller`` for everything logged inside it. It uses a context variable,
  so concurrent reconciles (asyncio tasks) each see their own fields.
- Records logged through kopf's per-object loggers carry the object reference; its namespace and
  name fill ``namespace`` and ``appliance``/``provider``/``vnfoperation`` when no context is bound.
- Every record is masked against the registered secret values (:func:`register_secrets`) as it
  is created, before any handler sees it (kopf's event poster included), and each formatted
  line is masked again (tracebacks included).

One JSON line looks like::

    {"timestamp": "2026-05-01T10:00:00.123Z", "level": "info", "logger": "vnf_operator.engine.sync",
     "message": "applied 3 changes", "namespace": "edge", "appliance": "fw-1", "provider": "opnsense",
     "service": "firewallAliases"}
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal, TextIO

from vnf_operator.core.secrets import SecretMasker

__all__ = [
    "CONTEXT_FIELDS",
    "LogFormat",
    "SecretMaskingFilter",
    "configure_logging",
    "current_log_context",
    "log_context",
    "mask_secrets",
    "register_secrets",
]

LogFormat = Literal["text", "json"]

# Context fields, in output order. Object names are fine in logs (unlike metric labels).
CONTEXT_FIELDS: Final = ("namespace", "appliance", "provider", "service", "operation", "controller")

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "vnf_log_context", default=MappingProxyType({})
)

# kopf's object loggers put the object reference here (kopf._core.actions.loggers.ObjectLogger).
_KOPF_REF_ATTR: Final = "k8s_ref"
_REF_FIELD_BY_KIND: Final = {
    "VnfAppliance": "appliance",
    "VnfProvider": "provider",
    "VnfOperation": "operation",
}


# -- context ---------------------------------------------------------------------------------


@contextmanager
def log_context(**fields: str | None) -> Iterator[Mapping[str, str]]:
    """Bind context fields for the enclosed code (nesting adds to / overrides the outer fields).

    ``None`` values are ignored, so callers can pass optional fields unconditionally.
    """
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    merged = dict(_context.get())
    merged.update({k: str(v) for k, v in fields.items() if v is not None})
    frozen = MappingProxyType(merged)
    token = _context.set(frozen)
    try:
        yield frozen
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, str]:
    """The fields bound by the enclosing :func:`log_context` blocks."""
    return dict(_context.get())


def _record_fields(record: logging.LogRecord) -> dict[str, str]:
    """Context fields of a record: kopf's object reference < bound context < explicit ``extra``."""
    out: dict[str, str] = {}
    ref = getattr(record, _KOPF_REF_ATTR, None)
    if isinstance(ref, Mapping):
        if ref.get("namespace"):
            out["namespace"] = str(ref["namespace"])
        field = _REF_FIELD_BY_KIND.get(str(ref.get("kind")))
        if field and ref.get("name"):
            out[field] = str(ref["name"])
    bound = getattr(record, "vnf_context", None)
    out.update(bound if isinstance(bound, Mapping) else _context.get())
    for name in CONTEXT_FIELDS:
        value = record.__dict__.get(name)
        if isinstance(value, str) and value:
            out[name] = value
    return {k: out[k] for k in CONTEXT_FIELDS if k in out}


# -- secrets ---------------------------------------------------------------------------------

_masker = SecretMasker()
_masker_lock = threading.Lock()


def register_secrets(*values: str) -> None:
    """Mask these values in every log record from now on (values under 4 characters are ignored)."""
    with _masker_lock:
        _masker.add(*values)


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret value replaced by the mask."""
    with _masker_lock:
        return _masker.mask(text) if _masker else text


class SecretMaskingFilter(logging.Filter):
    """Renders a record's message and masks registered secrets in it (and in its exception text).

    Installed process-wide through the log record factory by :func:`configure_logging`; it can
    also be added to any handler. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> None:
    if not _masker:
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        return
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_text:
        record.exc_text = mask_secrets(record.exc_text)


_factory_lock = threading.Lock()
_base_factory: Any = None


def _install_record_factory() -> None:
    """Mask every record at creation, whichever logger or handler it goes to (idempotent)."""
    global _base_factory
    with _factory_lock:
        if _base_factory is not None:
            return
        base = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = base(*args, **kwargs)
            # The context of the code that logs, even if a handler formats the record elsewhere.
            record.vnf_context = _context.get()
            _mask_record(record)
            return record

        _base_factory = base
        logging.setLogRecordFactory(factory)


# -- formatters ------------------------------------------------------------------------------


def _timestamp(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_record_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return mask_secrets(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """``2026-05-01T10:00:00.123Z INFO    logger [ns/appliance provider=… service=…] message``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _record_fields(record)
        where = ""
        if "namespace" in fields or "appliance" in fields:
            where = "/".join(fields[k] for k in ("namespace", "appliance") if k in fields)
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("namespace", "appliance"))
        ctx = " ".join(x for x in (where, extra) if x)
        line = f"{_timestamp(record)} {record.levelname:<8} {record.name}"
        if ctx:
            line += f" [{ctx}]"
        line += f" {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return mask_secrets(line)


class _VnfStreamHandler(logging.StreamHandler[TextIO]):
    """Marks the handler :func:`configure_logging` installed, to replace it on a second call."""


def configure_logging(level: str = "INFO", fmt: LogFormat = "text", *, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr) at ``level`` in ``fmt``; safe to call again to reconfigure.

    Removes kopf's own stderr handler (``kopf run`` installs one before startup handlers run)
    and any handler of an earlier call; other handlers (pytest's, for example) stay.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "text":
        formatter = TextFormatter()
    else:
        raise ValueError(f"unknown log format {fmt!r}: expected 'text' or 'json'")
    _install_record_factory()
    handler = _VnfStreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(SecretMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [
        h
        for h in root.handlers
        if not isinstance(h, _VnfStreamHandler) and type(h).__name__ != "_KopfStreamHandler"
    ]
    root.addHandler(handler)
    root.setLevel(numeric)
