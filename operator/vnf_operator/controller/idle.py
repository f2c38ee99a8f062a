"""Close the device connections of appliances that have not been reconciled for a while.

An open TLS connection and an HTTP client per appliance were most of the operator's memory per
appliance on a large fleet, and a resync every few minutes gains nothing from keeping them. The
transport pool's own reaper closes by idle time alone, so it could close a connection a reconcile
had just been handed and not used yet; this one releases an appliance only while holding its key
in the work queue, so no reconcile (nor operation, which holds the same key) of it runs meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from vnf_operator.controller import memory

if TYPE_CHECKING:
    from vnf_operator.controller.queue import WorkQueue
    from vnf_operator.engine.connections import ConnectionFactory

log = logging.getLogger(__name__)
DEFAULT_IDLE_SECONDS = 1.0
"""A resync every few minutes gains nothing from a kept connection; a burst of reconciles (a fleet
re-check) held one per appliance for this long: at 5 s, ~500 open TLS connections (~80 KiB each)."""


class IdleConnections:
    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._used: dict[tuple[str, str], float] = {}

    def touch(self, namespace: str, name: str) -> None:
        """The appliance's connections were just used (a reconcile or an operation ended)."""
        self._used[(namespace, name)] = time.monotonic()

    def forget(self, namespace: str, name: str) -> None:
        self._used.pop((namespace, name), None)

    def due(self, now: float) -> list[tuple[str, str]]:
        return [k for k, at in self._used.items() if now - at >= self.idle_seconds]

    async def release_due(
        self, queue: WorkQueue[tuple[str, str, str]], connections: ConnectionFactory
    ) -> int:
        released = 0
        for namespace, name in self.due(time.monotonic()):
            async with queue.holding(("appliance", namespace, name)) as held:
                if not held:  # being reconciled: it will be touched again when done
                    continue
                self._used.pop((namespace, name), None)
                await connections.invalidate(namespace, name)
                released += 1
        return released

    async def run(self, queue: WorkQueue[tuple[str, str, str]], connections: ConnectionFactory) -> None:
        """Forever (a task): every third of the idle time, release what has been idle that long."""
        while True:
            await asyncio.sleep(max(1.0, self.idle_seconds / 3))
            try:
                n = await self.release_due(queue, connections)
                if n:
                    log.debug("closed the idle connections of %d appliance(s)", n)
                    memory.trim()  # what they held goes back to the system
            except Exception:  # a failed close must not stop the loop
                log.exception("closing idle connections failed")
