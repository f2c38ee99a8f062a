"""vnf_operator.transport: HTTP(S) and SSH to appliances, directly, via a jump host, a proxy or a broker.

See docs/transports.md. The engine needs only what is re-exported here.

`SshTransport` (asyncssh) and `BrokerTransport` (httpx) are re-exported lazily: importing the
package must not load those libraries for a fleet that never uses SSH or a broker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vnf_operator.transport.base import CliRunner, HttpSender
from vnf_operator.transport.http import HttpTransport
from vnf_operator.transport.limits import Limiter, TokenBucket
from vnf_operator.transport.pool import TransportPool
from vnf_operator.transport.reach import HttpProxyDialer, JumpHost, make_http, make_ssh
from vnf_operator.transport.retry import (
    RetryEvent,
    backoff_delay,
    call_with_retry,
    mark_not_delivered,
    may_have_landed,
)
from vnf_operator.transport.settings import (
    DIRECT,
    HttpAuthSettings,
    HttpBasicAuth,
    HttpBearerAuth,
    HttpBodyKeyAuth,
    HttpHeaderAuth,
    HttpSessionAuth,
    HttpSettings,
    JumpHostSettings,
    LimitSettings,
    ReachSettings,
    SshSettings,
)

if TYPE_CHECKING:
    from vnf_operator.transport.broker import BrokerTransport
    from vnf_operator.transport.ssh import SshTransport

# Re-exported name -> the module defining it, imported on first access.
_LAZY = {
    "BrokerTransport": "vnf_operator.transport.broker",
    "SshTransport": "vnf_operator.transport.ssh",
}

if not TYPE_CHECKING:  # hidden from mypy, so unknown names stay type errors

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


__all__ = [
    "DIRECT",
    "BrokerTransport",
    "CliRunner",
    "HttpAuthSettings",
    "HttpBasicAuth",
    "HttpBearerAuth",
    "HttpBodyKeyAuth",
    "HttpHeaderAuth",
    "HttpProxyDialer",
    "HttpSender",
    "HttpSessionAuth",
    "HttpSettings",
    "HttpTransport",
    "JumpHost",
    "JumpHostSettings",
    "LimitSettings",
    "Limiter",
    "ReachSettings",
    "RetryEvent",
    "SshSettings",
    "SshTransport",
    "TokenBucket",
    "TransportPool",
    "backoff_delay",
    "call_with_retry",
    "make_http",
    "make_ssh",
    "mark_not_delivered",
    "may_have_landed",
]
