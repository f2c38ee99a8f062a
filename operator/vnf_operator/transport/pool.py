"""One transport per (appliance, connection), shared limits per appliance, closeable on demand.

The operator holds thousands of appliances: connections are opened lazily on first use, closed
when idle (`close_idle`, or the `reaper` task), when an appliance is deleted (`close_appliance`),
and replaced when an appliance's settings change (rotated credentials, new host, other reach):
the outdated transport is retired and closed once no request is running on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from vnf_operator.transport.base import CliRunner, HttpSender
from vnf_operator.transport.limits import Limiter
from vnf_operator.transport.reach import JumpHost, make_http, make_ssh
from vnf_operator.transport.settings import (
    DIRECT,
    HttpSettings,
    JumpHostSettings,
    LimitSettings,
    ReachSettings,
    SshSettings,
)

log = logging.getLogger(__name__)

Transport = HttpSender | CliRunner


@dataclass
class _Entry:
    settings: HttpSettings | SshSettings
    reach: ReachSettings
    transport: Transport
    jump: JumpHostSettings | None


class TransportPool:
    """Holds the transports of every appliance; safe to share across reconcilers (one event loop)."""

    def __init__(self, *, default_limits: LimitSettings | None = None) -> None:
        self.default_limits = default_limits or LimitSettings()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._limiters: dict[str, Limiter] = {}
        self._jumps: dict[JumpHostSettings, JumpHost] = {}
        self._retired: list[Transport] = []

    # ------------------------------------------------------------------ getting transports

    def limiter(self, appliance: str, limits: LimitSettings | None = None) -> Limiter:
        """The appliance's limiter; new limits replace it (running requests keep the old one)."""
        wanted = limits or self.default_limits
        current = self._limiters.get(appliance)
        if current is None or current.settings != wanted:
            current = Limiter(wanted)
            self._limiters[appliance] = current
            for (app, _), entry in self._entries.items():
                if app == appliance:
                    entry.transport.limiter = current
        return current

    def http(
        self,
        appliance: str,
        settings: HttpSettings,
        *,
        reach: ReachSettings | None = None,
        limits: LimitSettings | None = None,
    ) -> HttpSender:
        """The HTTP transport of `appliance`'s connection `settings.name`."""
        transport = self._get(appliance, settings, reach or DIRECT, limits)
        assert isinstance(transport, HttpSender)
        return transport

    def ssh(
        self,
        appliance: str,
        settings: SshSettings,
        *,
        reach: ReachSettings | None = None,
        limits: LimitSettings | None = None,
    ) -> CliRunner:
        """The SSH transport of `appliance`'s connection `settings.name`."""
        transport = self._get(appliance, settings, reach or DIRECT, limits)
        assert isinstance(transport, CliRunner)
        return transport

    def _get(
        self,
        appliance: str,
        settings: HttpSettings | SshSettings,
        reach: ReachSettings,
        limits: LimitSettings | None,
    ) -> Transport:
        if not settings.appliance:
            settings = settings.with_appliance(appliance)
        limiter = self.limiter(appliance, limits)
        key = (appliance, settings.name)
        entry = self._entries.get(key)
        if entry is not None:
            if entry.settings == settings and entry.reach == reach and not _closed(entry.transport):
                return entry.transport
            log.info("%s/%s: settings changed, replacing the connection", appliance, settings.name)
            self._retired.append(entry.transport)
            del self._entries[key]
        transport = self._make(settings, reach, limiter)
        self._entries[key] = _Entry(
            settings, reach, transport, reach.jump_host if reach.mode == "jumpHost" else None
        )
        return transport

    def _make(
        self, settings: HttpSettings | SshSettings, reach: ReachSettings, limiter: Limiter
    ) -> Transport:
        reach.validate()
        if reach.mode == "broker":
            # Lazy: httpx (the broker client) is loaded only when a broker transport is built.
            from vnf_operator.transport.broker import BrokerTransport

            return BrokerTransport(settings, reach, limiter=limiter)
        jump: JumpHost | None = None
        if reach.mode == "jumpHost":
            assert reach.jump_host is not None
            jump = self._jumps.get(reach.jump_host)
            if jump is None or jump.closed:
                jump = JumpHost(reach.jump_host, masker=reach.masker)
                self._jumps[reach.jump_host] = jump
        if isinstance(settings, HttpSettings):
            return make_http(settings, reach, limiter=limiter, jump=jump)
        return make_ssh(settings, reach, limiter=limiter, jump=jump)

    # ------------------------------------------------------------------ closing

    def __len__(self) -> int:
        return len(self._entries)

    def appliances(self) -> set[str]:
        return {app for app, _ in self._entries}

    async def close_appliance(self, appliance: str) -> int:
        """Close every connection of an appliance (deleted, or credentials rotated)."""
        keys = [k for k in self._entries if k[0] == appliance]
        for k in keys:
            await _close(self._entries.pop(k).transport)
        self._limiters.pop(appliance, None)
        await self._close_unused_jumps()
        return len(keys)

    async def close_idle(self, max_idle: float) -> int:
        """Close connections unused for `max_idle` seconds (and retired ones no longer in use)."""
        now = time.monotonic()
        closed = 0
        for k, entry in list(self._entries.items()):
            t = entry.transport
            if t.in_flight == 0 and now - t.last_used >= max_idle:
                del self._entries[k]
                await _close(t)
                closed += 1
        for t in list(self._retired):
            if t.in_flight == 0:
                self._retired.remove(t)
                await _close(t)
                closed += 1
        await self._close_unused_jumps()
        return closed

    async def reaper(self, *, interval: float = 60.0, max_idle: float = 300.0) -> None:
        """Run forever (as a task), closing idle connections every `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                n = await self.close_idle(max_idle)
                if n:
                    log.debug("closed %d idle connection(s)", n)
            except Exception:
                log.exception("closing idle connections failed")

    async def aclose(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        retired, self._retired = self._retired, []
        for t in [e.transport for e in entries] + retired:
            await _close(t)
        for jump in self._jumps.values():
            await jump.aclose()
        self._jumps.clear()
        self._limiters.clear()

    async def _close_unused_jumps(self) -> None:
        used = {e.jump for e in self._entries.values() if e.jump is not None}
        for js, jump in list(self._jumps.items()):
            if js not in used and not any(_uses(t, jump) for t in self._retired):
                del self._jumps[js]
                await jump.aclose()


def _closed(t: Transport) -> bool:
    return bool(getattr(t, "closed", False))


def _uses(t: Transport, jump: JumpHost) -> bool:
    return getattr(t, "_forwarder", None) is jump or getattr(t, "_dialer", None) is jump


async def _close(t: Transport) -> None:
    try:
        await t.aclose()
    except Exception:
        log.exception("closing a transport failed")
