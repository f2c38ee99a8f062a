"""Template filters for network values and safe quoting.

Every filter is pure. Bad input raises `FilterError` (a `ValueError`); the renderer turns it into a
`TemplateError` naming the template's document path.

Some filters return *marked* strings (`QuotedText`, `JsonText`, `XmlText`): the renderer's
per-context `finalize` hook accepts a marked value where a plain string would be rejected (a CLI
value with a space must go through `quote`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote as _urlquote

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class FilterError(ValueError):
    """A filter got a value it cannot handle."""


class UnsafeValue(FilterError):
    """A quoting filter refused a value that could escape its quotes (an injection attempt)."""


class SafeText(str):
    """A string a filter already made safe for some context (see subclasses)."""

    __slots__ = ()


class QuotedText(SafeText):
    """Output of `quote`: a double-quoted CLI argument."""

    __slots__ = ()


class JsonText(SafeText):
    """Output of `tojson`: a JSON document."""

    __slots__ = ()


class XmlText(SafeText):
    """Output of `xmlescape`: XML-escaped text."""

    __slots__ = ()


# Characters `quote` refuses: they end a line, chain or substitute commands in common CLIs/shells,
# or cannot be represented inside a double-quoted argument.
_QUOTE_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029;|&`\\\"]|\$\(|\$\{")
MAX_QUOTED_LENGTH = 1024


def quote(value: Any) -> QuotedText:
    """Wrap a value in double quotes for a CLI line, rejecting what could escape the quotes."""
    text = _text(value, "quote")
    m = _QUOTE_FORBIDDEN.search(text)
    if m:
        raise UnsafeValue(
            f"quote: value contains {_describe(m.group(0))}, which is never allowed in a CLI value"
        )
    if len(text) > MAX_QUOTED_LENGTH:
        raise UnsafeValue(f"quote: value is longer than {MAX_QUOTED_LENGTH} characters")
    return QuotedText(f'"{text}"')


def urlquote(value: Any) -> str:
    """Percent-encode a value completely (`/` included)."""
    return _urlquote(_text(value, "urlquote"), safe="")


def tojson(value: Any, indent: int | None = None) -> JsonText:
    """JSON-encode a value (marked safe for raw bodies)."""
    try:
        return JsonText(json.dumps(_plain(value), indent=indent, ensure_ascii=False))
    except (TypeError, ValueError) as e:
        raise FilterError(f"tojson: {e}") from None


def xmlescape(value: Any) -> XmlText:
    """Escape `&`, `<`, `>`, `"` and `'` for XML text or attributes; control characters are refused."""
    text = _text(value, "xmlescape")
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", text):
        raise UnsafeValue("xmlescape: value contains a control character")
    text = (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )
    return XmlText(text)


_TRUE = {"1", "true", "yes", "on", "enabled", "enable"}
_FALSE = {"0", "false", "no", "off", "disabled", "disable", ""}


def bool01(value: Any) -> str:
    """`"1"` for a true value, `"0"` for a false one (OPNsense booleans)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return "0"
    if isinstance(value, int | float):
        return "1" if value else "0"
    text = str(value).strip().lower()
    if text in _TRUE:
        return "1"
    if text in _FALSE:
        return "0"
    raise FilterError(f"bool01: {value!r} is not a boolean")


# ----------------------------------------------------------------------------- addresses


def _network(value: Any, name: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(_text(value, name).strip(), strict=False)
    except ValueError:
        raise FilterError(f"{name}: {value!r} is not an IP address or CIDR prefix") from None


def _interface(value: Any, name: str) -> IPInterface:
    try:
        return ipaddress.ip_interface(_text(value, name).strip())
    except ValueError:
        raise FilterError(f"{name}: {value!r} is not an IP address or CIDR prefix") from None


def _prefix_from(value: Any, name: str) -> tuple[int, int]:
    """(prefix length, IP version) from `24`, `"/24"`, `"10.0.0.0/24"` or a dotted mask."""
    if isinstance(value, bool):
        raise FilterError(f"{name}: {value!r} is not a prefix length")
    if isinstance(value, int):
        if not 0 <= value <= 32:
            raise FilterError(f"{name}: {value} is not an IPv4 prefix length (0-32)")
        return value, 4
    text = _text(value, name).strip()
    if text.startswith("/"):
        text = text[1:]
    if text.isdigit():
        return _prefix_from(int(text), name)
    if "/" in text:
        net = _network(text, name)
        return net.prefixlen, net.version
    return _mask_to_prefix(text, name), 4


def _mask_to_prefix(text: str, name: str) -> int:
    try:
        mask = ipaddress.IPv4Address(text)
    except ValueError:
        raise FilterError(f"{name}: {text!r} is not a netmask") from None
    bits = int(mask)
    inverted = bits ^ 0xFFFFFFFF
    if inverted & (inverted + 1):
        raise FilterError(f"{name}: {text!r} is not a contiguous netmask")
    return 32 - inverted.bit_length()


def netmask(value: Any) -> str:
    """Prefix length (or CIDR) → dotted netmask: `24` → `255.255.255.0`."""
    plen, version = _prefix_from(value, "netmask")
    if version == 6:
        return str(ipaddress.IPv6Network(f"::/{plen}").netmask)
    return str(ipaddress.IPv4Network(f"0.0.0.0/{plen}").netmask)


def prefixlen(value: Any) -> int:
    """Dotted netmask (or CIDR) → prefix length: `255.255.255.0` → `24`."""
    plen, _ = _prefix_from(value, "prefixlen")
    return plen


def wildcard(value: Any) -> str:
    """Cisco wildcard mask of a CIDR, netmask or prefix length: `10.0.0.0/24` → `0.0.0.255`."""
    plen, version = _prefix_from(value, "wildcard")
    if version == 6:
        raise FilterError("wildcard: wildcard masks are IPv4 only")
    return str(ipaddress.IPv4Network(f"0.0.0.0/{plen}").hostmask)


def wildcard_prefixlen(value: Any) -> int:
    """Prefix length of a Cisco wildcard mask: `0.0.0.255` → `24`."""
    text = _text(value, "wildcard_prefixlen").strip()
    try:
        bits = int(ipaddress.IPv4Address(text))
    except ValueError:
        raise FilterError(f"wildcard_prefixlen: {text!r} is not a wildcard mask") from None
    if bits & (bits + 1):
        raise FilterError(f"wildcard_prefixlen: {text!r} is not a contiguous wildcard mask")
    return 32 - bits.bit_length()


def network(value: Any) -> str:
    """Network address of a CIDR: `10.1.2.3/24` → `10.1.2.0`."""
    return str(_network(value, "network").network_address)


def address(value: Any) -> str:
    """Address part of a CIDR: `10.1.2.3/24` → `10.1.2.3`."""
    return str(_interface(value, "address").ip)


def prefix(value: Any) -> int:
    """Prefix length of a CIDR: `10.1.2.3/24` → `24` (a bare address gives 32 or 128)."""
    return _interface(value, "prefix").network.prefixlen


def cidr(value: Any) -> str:
    """Canonical network of a CIDR: `10.1.2.3/24` → `10.1.2.0/24`."""
    return str(_network(value, "cidr"))


def ip_version(value: Any) -> int:
    """4 or 6."""
    return _interface(value, "ip_version").version


# ----------------------------------------------------------------------------- helpers


def _text(value: Any, name: str) -> str:
    if value is None:
        raise FilterError(f"{name}: got no value (None)")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    raise FilterError(f"{name}: expected text or a number, got {type(value).__name__}")


def _plain(value: Any) -> Any:
    """Plain JSON data: dict/list/str/int/float/bool/None (marked strings become plain)."""
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _describe(chars: str) -> str:
    names = {
        "\n": "a newline",
        "\r": "a carriage return",
        ";": "`;`",
        "|": "`|`",
        "&": "`&`",
        "`": "a backtick",
        "\\": "a backslash",
        '"': "a double quote",
        "$(": "`$(`",
        "${": "`${`",
    }
    if chars in names:
        return names[chars]
    return f"a control character (0x{ord(chars[0]):02x})"


FILTERS: dict[str, Callable[..., Any]] = {
    "quote": quote,
    "urlquote": urlquote,
    "tojson": tojson,
    "xmlescape": xmlescape,
    "bool01": bool01,
    "netmask": netmask,
    "prefixlen": prefixlen,
    "wildcard": wildcard,
    "wildcard_prefixlen": wildcard_prefixlen,
    "network": network,
    "address": address,
    "prefix": prefix,
    "cidr": cidr,
    "ip_version": ip_version,
}
"""Filters added to the template environment (besides Jinja builtins such as `lower`, `upper`)."""
