"""The broker's wire format: rendered operations, target settings, responses and errors as JSON.

Decoding is strict (unknown keys and wrong types are refused with `WireError`), because the broker
takes these documents from the network. Settings carry credentials: they travel only inside the
TLS connection to the broker and are never logged on either side.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from vnf_operator.core.errors import (
    AuthenticationError,
    DeviceError,
    TransportError,
    VerificationError,
)
from vnf_operator.core.rendered import CliCommands, HttpRequest, RawResponse
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport.retry import mark_not_delivered, may_have_landed
from vnf_operator.transport.settings import (
    HttpAuthSettings,
    HttpBasicAuth,
    HttpBearerAuth,
    HttpBodyKeyAuth,
    HttpHeaderAuth,
    HttpSessionAuth,
    HttpSettings,
    SshSettings,
)

VERSION = 1
T = TypeVar("T")

_AUTH_TYPES: dict[str, type[Any]] = {
    "basic": HttpBasicAuth,
    "bearer": HttpBearerAuth,
    "header": HttpHeaderAuth,
    "bodyKey": HttpBodyKeyAuth,
    "session": HttpSessionAuth,
}
_AUTH_NAMES = {v: k for k, v in _AUTH_TYPES.items()}
_ERRORS: dict[str, type[TransportError]] = {
    "TransportError": TransportError,
    "AuthenticationError": AuthenticationError,
    "VerificationError": VerificationError,
    "DeviceError": DeviceError,
}


class WireError(ValueError):
    """A document does not have the expected shape."""


# --------------------------------------------------------------------------- generic encode/decode


def _encode(value: Any) -> Any:
    if isinstance(value, SecretMasker):
        raise TypeError("maskers are not encoded")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        if type(value) in _AUTH_NAMES:
            out["type"] = _AUTH_NAMES[type(value)]
        for f in dataclasses.fields(value):
            if f.name == "masker":
                continue
            out[f.name] = _encode(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, value: Any, where: str) -> Any:
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        if {a for a in args if a is not type(None)} <= set(_AUTH_NAMES):
            return _decode_auth(value, where)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, value, where)
            except WireError as e:
                errors.append(str(e))
        raise WireError(errors[0] if errors else f"{where}: unexpected value")
    if origin is Literal:
        if value not in get_args(tp):
            raise WireError(f"{where}: must be one of {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise WireError(f"{where}: must be a list")
        (item,) = (a for a in get_args(tp) if a is not Ellipsis)
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        if not isinstance(value, dict):
            raise WireError(f"{where}: must be an object")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _decode(vt, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_dataclass(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WireError(f"{where}: must be a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireError(f"{where}: must be an integer")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise WireError(f"{where}: must be a {tp.__name__}")
        return value
    raise WireError(f"{where}: cannot decode type {tp!r}")


def _decode_dataclass(cls: type[T], value: Any, where: str, **extra: Any) -> T:
    if not isinstance(value, dict):
        raise WireError(f"{where}: must be an object")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(value) - set(fields) - {"type"}
    if unknown:
        raise WireError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = dict(extra)
    for name, f in fields.items():
        if name == "masker" or name in extra:
            continue
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise WireError(f"{where}.{name}: required")
            continue
        kwargs[name] = _decode(hints[name], value[name], f"{where}.{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise WireError(f"{where}: {e}") from None


def _decode_auth(value: Any, where: str) -> HttpAuthSettings:
    if not isinstance(value, dict) or value.get("type") not in _AUTH_TYPES:
        raise WireError(f"{where}.type: must be one of {', '.join(_AUTH_TYPES)}")
    result: HttpAuthSettings = _decode_dataclass(_AUTH_TYPES[value["type"]], value, where)
    return result


# --------------------------------------------------------------------------- public


def encode(value: Any) -> Any:
    """Settings, requests, commands or responses as JSON-ready data (maskers left out)."""
    return _encode(value)


def decode_http_settings(value: Any, masker: SecretMasker | None = None) -> HttpSettings:
    return _decode_dataclass(HttpSettings, value, "target", masker=masker or SecretMasker())


def decode_ssh_settings(value: Any, masker: SecretMasker | None = None) -> SshSettings:
    return _decode_dataclass(SshSettings, value, "target", masker=masker or SecretMasker())


def decode_request(value: Any) -> HttpRequest:
    return _decode_dataclass(HttpRequest, value, "request")


def decode_commands(value: Any) -> CliCommands:
    return _decode_dataclass(CliCommands, value, "commands")


def decode_response(value: Any) -> RawResponse:
    return _decode_dataclass(RawResponse, value, "response")


def encode_error(err: TransportError) -> dict[str, Any]:
    """An error as data; its texts are already masked by the transport that raised it."""
    name = next((n for n, c in _ERRORS.items() if type(err) is c), None)
    if name is None:
        name = next(n for n, c in reversed(_ERRORS.items()) if isinstance(err, c))
    return {
        "type": name,
        "message": err.reason_text,
        "transient": err.transient,
        "status": err.status,
        "retryAfter": err.retry_after,
        "deviceMessage": err.device_message,
        "delivered": may_have_landed(err),
    }


def decode_error(value: Any, *, mask: Callable[[str], str], via: str = "") -> TransportError:
    """Rebuild an error the broker relayed; every text is masked again with the caller's masker."""
    if not isinstance(value, dict) or value.get("type") not in _ERRORS:
        return TransportError(f"{via}malformed error from the broker", transient=True)
    cls = _ERRORS[value["type"]]
    status = value.get("status")
    retry_after = value.get("retryAfter")
    err = cls(
        f"{via}{mask(str(value.get('message', '')))}",
        transient=bool(value.get("transient", False)),
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        device_message=mask(str(value.get("deviceMessage") or "")),
    )
    if value.get("delivered") is False:
        mark_not_delivered(err)
    return err


def login_secrets(settings: HttpSettings) -> list[str]:
    """Values a broker should mask besides the declared secrets: header values, login strings."""
    found: list[str] = [*settings.headers.values()]
    if settings.auth is not None:
        found.extend(settings.auth.secrets())
    return found
