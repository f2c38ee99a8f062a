"""providers/haproxy-dataplane.yaml puts each sync's changes in one Data Plane API transaction.

The engine (Session + sync_service, as the operator runs it) against the Data Plane API simulator:
`begin` reads the configuration version and opens a transaction, every change is staged in it
(202), `commit` makes them live with one HAProxy reload; a failing change or commit runs `abort`
(the transaction is deleted, haproxy.cfg keeps what it had) and the next sync converges; a sync
with nothing to change opens no transaction. Ground truth is the simulator's own request log,
reloads and transactions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from tests.integration.conformance.conftest import ALL_CASES, Lab, open_lab

from vnf_operator.core import diff
from vnf_operator.core.errors import DeviceError
from vnf_operator.core.model import Policy
from vnf_operator.engine.sync import sync_service
from vnf_operator.testing.simulators import DataplaneSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

CASE = next(c for c in ALL_CASES if c.provider == "haproxy-dataplane")
API = "/v3/services/haproxy"


def pool(name: str, port: int = 8080) -> dict[str, Any]:
    return {"name": name, "servers": [{"name": "web1", "address": "10.0.1.11", "port": port}]}


@pytest.fixture
async def sim() -> DataplaneSimulator:
    return DataplaneSimulator(SimulatorConfig(tls=True))


@pytest.fixture
async def lab(sim: DataplaneSimulator) -> AsyncIterator[Lab]:
    opened = await open_lab(CASE, sim=sim)
    yield opened
    await opened.close()


async def writes(lab: Lab) -> list[tuple[str, str, int]]:
    """(method, path, status) of every write the device received since the last reset."""
    return [(r["method"], r["path"], r["status"]) for r in await lab.requests() if lab.is_write(r)]


def open_transactions(sim: DataplaneSimulator) -> list[str]:
    return [t.id for t in sim.transactions.values() if t.status == "in_progress"]


async def test_n_changes_are_one_transaction_and_one_reload(lab: Lab, sim: DataplaneSimulator) -> None:
    reloads, version = len(sim.reloads), sim.version
    await lab.reset_requests()
    result = await lab.sync("lb_pools", [pool("a"), pool("b"), pool("c")])
    assert result.applied["create"] == 3 and result.remaining == [], result
    assert "committed lb_pools" in result.changes

    log = await lab.requests()
    (tx_id,) = [t.id for t in sim.transactions.values()]
    assert await writes(lab) == [
        ("POST", f"{API}/transactions", 201),
        ("POST", f"{API}/configuration/backends", 202),  # staged in the transaction
        ("POST", f"{API}/configuration/backends", 202),
        ("POST", f"{API}/configuration/backends", 202),
        ("PUT", f"{API}/transactions/{tx_id}", 200),
    ]
    # `begin` read the version once, right before opening the transaction on it
    paths = [r["path"] for r in log]
    assert paths.count(f"{API}/configuration/version") == 1
    assert paths.index(f"{API}/configuration/version") + 1 == paths.index(f"{API}/transactions")
    assert len(sim.reloads) == reloads + 1 and sim.version == version + 1
    assert sorted(sim.haproxy.backends) == ["a", "b", "c"]
    assert sim.transactions[tx_id].status == "success" and open_transactions(sim) == []


async def test_a_sync_with_nothing_to_change_opens_no_transaction(lab: Lab, sim: DataplaneSimulator) -> None:
    first = await lab.sync("lb_pools", [pool("a")])
    transactions, reloads = len(sim.transactions), len(sim.reloads)
    await lab.reset_requests()
    again = await lab.sync("lb_pools", [pool("a")], managed_keys=first.managed_keys)
    assert again.plan is not None and again.plan.is_empty
    assert await writes(lab) == []
    assert f"{API}/configuration/version" not in [r["path"] for r in await lab.requests()]
    assert (len(sim.transactions), len(sim.reloads)) == (transactions, reloads)


async def test_a_failing_change_aborts_the_transaction_and_the_next_sync_converges(
    lab: Lab, sim: DataplaneSimulator
) -> None:
    """Someone adds backend `b` between our list and our `begin`: our create of `b` in the
    transaction is refused (409) after `a` was staged; the transaction is dropped, so haproxy.cfg
    has neither our `a` nor half of anything, and the next sync converges (adopting `b`)."""
    desired = lab.validated("lb_pools", [pool("a"), pool("b", 9090), pool("c")])

    async def someone_adds_b(plan: diff.Plan) -> None:
        assert plan.counts()["create"] == 3
        await lab.device_do(
            [
                {
                    "http": {
                        "method": "POST",
                        "path": f"{API}/configuration/backends",
                        "query": {"version": str(sim.version), "full_section": "true"},
                        "json": {"name": "b", "mode": "tcp", "servers": {}},
                    }
                }
            ]
        )

    before = sim.haproxy.clone()
    before.backends["b"] = {"name": "b", "mode": "tcp", "balance": {"algorithm": "roundrobin"}, "servers": {}}
    reloads = len(sim.reloads)
    await lab.reset_requests()
    with pytest.raises(DeviceError) as failed:
        await sync_service(
            lab.session, "lb_pools", desired, policy=Policy.REPLACED, before_apply=someone_adds_b
        )
    assert failed.value.status == 409 and "already exists" in (failed.value.device_message or "")

    log = await writes(lab)
    opened = [n for n, w in enumerate(log) if w == ("POST", f"{API}/transactions", 201)]
    assert len(opened) == 1, log
    ours = log[-1][1].rsplit("/", 1)[-1]
    assert log[opened[0] :] == [
        ("POST", f"{API}/transactions", 201),  # begin
        ("POST", f"{API}/configuration/backends", 202),  # `a`, staged
        ("POST", f"{API}/configuration/backends", 409),  # `b`, refused
        ("DELETE", f"{API}/transactions/{ours}", 204),  # abort
    ]
    assert open_transactions(sim) == [] and ours not in sim.transactions
    assert sim.haproxy == before, "the device changed although the sync was aborted"
    assert len(sim.reloads) == reloads + 1  # someone else's write only

    result = await lab.sync("lb_pools", [pool("a"), pool("b", 9090), pool("c")])
    counts = result.plan.counts() if result.plan else {}
    assert (counts["create"], counts["update"]) == (2, 1), result.plan
    assert result.remaining == []
    assert sorted(sim.haproxy.backends) == ["a", "b", "c"]
    assert sim.haproxy.backends["b"]["servers"]["web1"]["port"] == 9090
    assert open_transactions(sim) == [] and len(sim.reloads) == reloads + 2


async def test_a_refused_commit_aborts_and_applies_none_of_the_changes(
    lab: Lab, sim: DataplaneSimulator
) -> None:
    """HAProxy refuses the transaction at commit (a frontend's default backend does not exist):
    the other frontend of the same sync is not applied either, and no transaction stays open."""
    await lab.sync("lb_pools", [pool("web")])
    frontends: Sequence[Mapping[str, Any]] = [
        {"name": "ok", "default_backend": "web", "address": "127.0.0.1", "port": 18080},
        {"name": "broken", "default_backend": "missing", "address": "127.0.0.1", "port": 18081},
    ]
    reloads, version = len(sim.reloads), sim.version
    with pytest.raises(DeviceError) as failed:
        await lab.sync("lb_frontends", frontends)
    assert failed.value.status == 400 and "default_backend" in (failed.value.device_message or "")
    assert sim.haproxy.frontends == {} and (len(sim.reloads), sim.version) == (reloads, version)
    assert open_transactions(sim) == [] and all(t.status == "success" for t in sim.transactions.values())

    result = await lab.sync("lb_frontends", frontends[:1])
    assert result.applied["create"] == 1 and result.remaining == []
    assert list(sim.haproxy.frontends) == ["ok"] and len(sim.reloads) == reloads + 1


async def test_a_change_run_alone_is_its_own_transaction(lab: Lab, sim: DataplaneSimulator) -> None:
    """Outside a sync (the finalizer removing managed items, a VnfOperation) a change still goes
    through `begin` and `commit`; a `commit` with no transaction open has nothing to send."""
    await lab.sync("lb_pools", [pool("a")])
    reloads = len(sim.reloads)
    await lab.reset_requests()
    (actual,) = await lab.find("lb_pools", pool("a"))
    await lab.session.run("lb_pools", "delete", actual=actual, item=actual)
    await lab.session.run("lb_pools", "commit")
    log = await writes(lab)
    assert [(m, p.rsplit("/", 1)[0] if m == "PUT" else p, s) for m, p, s in log] == [
        ("POST", f"{API}/transactions", 201),
        ("DELETE", f"{API}/configuration/backends/a", 202),
        ("PUT", f"{API}/transactions", 200),
    ]
    assert sim.haproxy.backends == {} and len(sim.reloads) == reloads + 1
    assert open_transactions(sim) == [] and lab.session.opened == {}
