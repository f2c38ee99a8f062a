"""vnf_operator.transport: HTTP(S) and SSH to appliances, directly, via a jump host, a proxy or a broker.

See docs/transports.md. The engine needs only what is re-exported here.
"""

from __future__ import annotations

from vnf_operator.transport.base import CliRunner, HttpSender
from vnf_operator.transport.broker import BrokerTransport
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
from vnf_operator.transport.ssh import SshTransport

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
