"""Memory per appliance between reconciles: idle device connections are released (never from under a
running reconcile), cached bodies are slimmed. (Next to the Secret cache, the other per-appliance
state the operator keeps.)
"""

from __future__ import annotations

import json
import time

import pytest

from vnf_operator.controller.idle import IdleConnections
from vnf_operator.controller.queue import WorkQueue

pytestmark = pytest.mark.unit

Key = tuple[str, str, str]


class Factory:
    """Records which appliances' connections were closed."""

    def __init__(self) -> None:
        self.closed: list[tuple[str, str]] = []

    async def invalidate(self, namespace: str, name: str) -> None:
        self.closed.append((namespace, name))


async def test_holding_a_key_keeps_workers_off_it_and_runs_an_add_afterwards() -> None:
    q: WorkQueue[Key] = WorkQueue()
    key, other = ("appliance", "ns", "fw"), ("appliance", "ns", "other")
    q.add(key)  # waiting for a worker when the hold starts
    async with q.holding(key) as held:
        assert held and q.active == 1
        q.add(key)  # arrives while held: still once
        q.add(other)
        assert await q._get() == other  # a worker skips the held key
        q._done(other)
        assert q._queue.qsize() == 0
    assert q.active == 0 and q._queue.qsize() == 1
    got = await q._get()  # a worker takes it now, once
    assert got == key
    async with q.holding(key) as held:
        assert not held  # being processed: not held twice
    q._done(got)
    assert q._queue.qsize() == 0


async def test_only_appliances_idle_long_enough_and_not_busy_are_released() -> None:
    q: WorkQueue[Key] = WorkQueue()
    idle = IdleConnections(idle_seconds=0.0)
    factory = Factory()
    idle.touch("ns", "quiet")
    idle.touch("ns", "busy")
    idle.touch("ns", "gone")
    idle.forget("ns", "gone")
    q.add(("appliance", "ns", "busy"))
    busy = await q._get()  # a reconcile of it is running
    assert await idle.release_due(q, factory) == 1  # type: ignore[arg-type]
    assert factory.closed == [("ns", "quiet")]
    # The busy one is released once its reconcile is over and it has been idle long enough.
    q._done(busy)
    assert await idle.release_due(q, factory) == 1  # type: ignore[arg-type]
    assert factory.closed == [("ns", "quiet"), ("ns", "busy")]
    assert await idle.release_due(q, factory) == 0  # type: ignore[arg-type]


def test_due_after_the_idle_time() -> None:
    idle = IdleConnections(idle_seconds=15.0)
    idle.touch("ns", "fw")
    now = time.monotonic()
    assert idle.due(now) == []
    assert idle.due(now + 15.0) == [("ns", "fw")]


def test_cached_bodies_drop_managed_fields_and_share_short_strings() -> None:
    from vnf_operator.controller.main import _slim

    text = json.dumps(
        {
            "metadata": {"name": "fw", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"items": [{"action": "pass", "note": "x" * 100}]},
        }
    )
    a, b = _slim(json.loads(text)), _slim(json.loads(text))
    assert a == {"metadata": {"name": "fw"}, "spec": {"items": [{"action": "pass", "note": "x" * 100}]}}
    assert a["spec"]["items"][0]["action"] is b["spec"]["items"][0]["action"]
    assert a["spec"]["items"][0]["note"] is not b["spec"]["items"][0]["note"]  # long: not interned
