"""What a rendered operation is, between the pure core and the transports.

The core renders a dictionary operation into one of these values; a transport sends it and
returns a `RawResponse`; the core parses that. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class MultipartField:
    """One part of a `multipart/form-data` body; `filename` None makes it a plain form field."""

    name: str
    content: str
    filename: str | None = None
    content_type: str = ""


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, relative to a connection's base URL.

    `path` is already safe: every templated value in it was percent-encoded as one segment.
    Exactly one of `json`, `form`, `content`, `multipart` carries the body (or none).
    """

    connection: str
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    content: str | None = None
    timeout: float | None = None
    multipart: tuple[MultipartField, ...] | None = None


@dataclass(frozen=True)
class CliCommands:
    """A list of CLI lines sent over one SSH session, in order.

    `mode` says whether the lines run in an interactive shell (prompt detection, paging
    disabled, config mode entered/left per the connection) or each as an exec-mode command.
    """

    connection: str
    commands: tuple[str, ...]
    mode: Literal["interactive", "exec"] = "interactive"
    config_mode: bool = False
    timeout: float | None = None


RenderedOperation = HttpRequest | CliCommands


@dataclass(frozen=True)
class RawResponse:
    """What came back. For CLI, `text` is the combined output of all lines and `outputs` per line."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    outputs: tuple[str, ...] = ()
    exit_status: int | None = None
    elapsed: float = 0.0
