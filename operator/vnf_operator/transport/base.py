"""What the engine sees of a transport, whatever the reach mode."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from vnf_operator.core.rendered import CliCommands, HttpRequest, RawResponse
from vnf_operator.transport.limits import Limiter


@runtime_checkable
class Closeable(Protocol):
    async def aclose(self) -> None: ...


@runtime_checkable
class HttpSender(Protocol):
    """Sends one rendered HTTP request (`HttpTransport`, or `BrokerTransport` in broker mode)."""

    in_flight: int
    last_used: float
    limiter: Limiter | None

    async def send(self, req: HttpRequest, *, operation: str, idempotent: bool = True) -> RawResponse: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CliRunner(Protocol):
    """Runs rendered CLI lines (`SshTransport`, or `BrokerTransport` in broker mode)."""

    in_flight: int
    last_used: float
    limiter: Limiter | None

    @property
    def host_key_fingerprint(self) -> str | None: ...

    @property
    def host_key_line(self) -> str | None: ...

    async def run(self, cmds: CliCommands, *, operation: str) -> RawResponse: ...

    async def aclose(self) -> None: ...
