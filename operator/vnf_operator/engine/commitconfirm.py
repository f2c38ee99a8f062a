"""Native commit-confirm for the health-gated apply (docs/lifecycle.md, "Native commit-confirm").

A dictionary opts in with `info.capabilities.commitModel: commitConfirm` and a custom operation
named `confirm` on one of its services (it stops the device's revert timer). Then, in a reconcile
that changes the device:

1. the first write (create, update, delete, move or batch) is rendered with
   `vars.commit_confirm_minutes` set to the confirm window, so the dictionary can ask the device for a
   commit that reverts itself (VyOS `/configure` with `confirm_time`); later writes see it empty;
2. the services' `commit` steps (VyOS: save to the boot config) are held back: saving an unconfirmed
   change would make it survive the revert;
3. healthy after the apply: `confirm` runs, then the held-back commits;
4. unhealthy: nothing is confirmed or saved. The device reverts by itself when the window closes;
   the engine waits for the health checks to pass again (bounded), then records the rollback.

Nothing here names a vendor: what "confirm" and the confirm window mean on the wire is the
dictionary's business.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from vnf_operator.core.context import TemplateContext
from vnf_operator.core.model import CommitModel, ProviderDictionary
from vnf_operator.core.parse import Parsed
from vnf_operator.core.render import BatchChange
from vnf_operator.engine.health import HealthResult
from vnf_operator.engine.session import Session

CONFIRM_OPERATION = "confirm"
CONFIRM_VAR = "commit_confirm_minutes"
WRITES = frozenset({"create", "update", "delete", "move"})
DEFAULT_MINUTES = 2
"""The confirm window: long enough for the health checks, short enough to bound an outage."""


def confirm_service(dictionary: ProviderDictionary) -> str | None:
    """The service whose `confirm` operation confirms a commit; None when the dictionary does not
    use commit-confirm."""
    if dictionary.info.capabilities.commit_model is not CommitModel.COMMIT_CONFIRM:
        return None
    return next(
        (n for n, s in sorted(dictionary.services.items()) if CONFIRM_OPERATION in s.operations), None
    )


def window_minutes(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    return max(int(env.get("VNF_COMMIT_CONFIRM_MINUTES", str(DEFAULT_MINUTES))), 1)


def revert_wait(minutes: int, env: Mapping[str, str] | None = None) -> float:
    """How long to wait for the device to revert: the window plus 30 s unless the operator says
    otherwise (`VNF_COMMIT_CONFIRM_REVERT_SECONDS`; simulators with a scaled clock revert sooner)."""
    env = os.environ if env is None else env
    configured = env.get("VNF_COMMIT_CONFIRM_REVERT_SECONDS")
    return float(configured) if configured else minutes * 60.0 + 30.0


class ConfirmingSession(Session):
    """A session whose first write asks for a confirmed commit and whose commits wait for `confirm`."""

    def __init__(self, *args: Any, service: str, minutes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirm_with = service
        self.minutes = minutes
        self.armed = False
        """A write asked for a confirmed commit: the device reverts unless `confirm` runs."""
        self.held: list[str] = []
        """Services whose commit waits for the confirm."""
        self._active = True
        self._arming = False

    def context(self, **extra: Any) -> TemplateContext:
        ctx = super().context(**extra)
        value = str(self.minutes) if self._arming else ""
        info = dataclasses.replace(ctx.appliance, vars={**ctx.appliance.vars, CONFIRM_VAR: value})
        return ctx.replace(appliance=info)

    async def run(
        self,
        service: str,
        name: str,
        *,
        landed: Callable[[], Awaitable[bool]] | None = None,
        **ctx: Any,
    ) -> Parsed:
        if self._active and name == "commit" and self.armed:
            if service not in self.held:
                self.held.append(service)
            return Parsed(ok=True)
        if self._active and not self.armed and name in WRITES:
            return await self._arm(super().run(service, name, landed=landed, **ctx))
        return await super().run(service, name, landed=landed, **ctx)

    async def run_batch(self, service: str, name: str, changes: Sequence[BatchChange]) -> Parsed:
        if self._active and not self.armed:
            return await self._arm(super().run_batch(service, name, changes))
        return await super().run_batch(service, name, changes)

    async def _arm(self, call: Awaitable[Parsed]) -> Parsed:
        self._arming = True
        try:
            result = await call
        finally:
            self._arming = False
        self.armed = True
        return result

    async def confirm(self) -> list[str]:
        """Healthy: confirm, then run the held-back commits. Returns the services committed."""
        self._active = False
        if not self.armed:
            return []
        await super().run(self.confirm_with, CONFIRM_OPERATION)
        held, self.held = self.held, []
        for service in held:
            await super().run(service, "commit")
        return held

    def abandon(self) -> None:
        """Unhealthy: confirm nothing, commit nothing; later writes (a rollback) are plain."""
        self._active = False
        self.held = []

    async def await_revert(
        self, check: Callable[[Session], Awaitable[HealthResult]], wait: float
    ) -> HealthResult | None:
        """Poll the health checks until they pass again (the device reverted); None when they do
        not within `wait` seconds."""
        deadline = time.monotonic() + wait
        interval = min(5.0, max(wait / 20, 0.2))
        while True:
            await asyncio.sleep(interval)
            result = await check(self)
            if result.ok:
                return result
            if time.monotonic() >= deadline:
                return None


def open_session(live: bool, *args: Any, **kwargs: Any) -> Session:
    """A ConfirmingSession when the reconcile may change the device and the dictionary declares
    commit-confirm; a plain Session otherwise (same arguments as Session)."""
    provider = args[0] if args else kwargs["provider"]
    service = confirm_service(provider.dictionary) if live else None
    if service is None:
        return Session(*args, **kwargs)
    return ConfirmingSession(*args, service=service, minutes=window_minutes(), **kwargs)


def armed(session: Session) -> ConfirmingSession | None:
    """The session when a write of this reconcile asked for a confirmed commit."""
    return session if isinstance(session, ConfirmingSession) and session.armed else None


async def settle_unconfirmed(
    session: ConfirmingSession, check: Callable[[Session], Awaitable[HealthResult]]
) -> tuple[bool, str]:
    """Unhealthy after a confirmed commit: confirm nothing, wait for the device's own revert.
    Returns (reverted, a note for the status message)."""
    session.abandon()
    wait = revert_wait(session.minutes)
    if await session.await_revert(check, wait) is None:
        return False, f"the device did not revert the unconfirmed commit within {wait:g}s"
    return (
        True,
        f"the device reverted the unconfirmed commit by itself ({session.minutes} min commit-confirm)",
    )
