"""Batch execution of a sync against the VyOS simulator: the changes of one sync go in one
`/configure` request (one configuration session, one commit) and one `/config-file` save.

Ground truth is the simulator's request log (`GET /_sim/requests`) and what the dictionary's `list`
reads back; the engine runs as the operator runs it (`Session` + `sync_service`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.integration.conformance.conftest import CASE_LIST, PROVIDERS, Lab, open_lab

from vnf_operator.core.errors import DeviceError
from vnf_operator.core.loader import load_provider_text
from vnf_operator.core.model import Policy
from vnf_operator.engine.session import Session

pytestmark = pytest.mark.integration

SERVICE = "firewall_rules"


def rule(number: int, port: str = "22", protocol: str = "tcp") -> dict[str, Any]:
    return {
        "ruleset": "forward",
        "number": number,
        "action": "accept",
        "protocol": protocol,
        "destination_port": port,
        "description": f"batch rule {number}",
    }


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    case = next(c for c in CASE_LIST if c.provider == "vyos")
    opened = await open_lab(case)
    try:
        yield opened
    finally:
        await opened.close()


async def writes(lab: Lab) -> Counter[str]:
    """Successful device requests by path (every VyOS API call is a POST)."""
    return Counter(r["path"] for r in await lab.requests() if int(r["status"]) < 400)


async def numbers(lab: Lab) -> list[int]:
    return sorted(int(i["number"]) for i in await lab.listed(SERVICE) if i.get("ruleset") == "forward")


async def test_many_changes_go_in_one_configure_and_one_save(lab: Lab) -> None:
    await lab.reset_requests()
    first = await lab.sync(SERVICE, [rule(n) for n in (10, 20, 30, 40, 50)])
    assert first.applied["create"] == 5 and first.remaining == [], first.remaining
    log = await writes(lab)
    assert (log["/configure"], log["/config-file"]) == (1, 1), log
    assert await numbers(lab) == [10, 20, 30, 40, 50]

    # Update two, delete one, create one: still one request and one save.
    await lab.reset_requests()
    desired = [rule(10, "2222"), rule(20), rule(30, "8022"), rule(50), rule(60)]
    second = await lab.sync(SERVICE, desired, managed_keys=first.managed_keys)
    assert second.plan is not None
    counts = second.plan.counts()
    assert (counts["create"], counts["update"], counts["delete"]) == (1, 2, 1), second.plan.summary()
    assert second.remaining == [], second.remaining
    log = await writes(lab)
    assert (log["/configure"], log["/config-file"]) == (1, 1), log
    assert await numbers(lab) == [10, 20, 30, 50, 60]
    found = {int(i["number"]): i for i in await lab.listed(SERVICE)}
    assert (found[10]["destination_port"], found[30]["destination_port"]) == ("2222", "8022")


async def test_batch_size_splits_the_change_set(lab: Lab) -> None:
    text = (PROVIDERS / "vyos.yaml").read_text(encoding="utf-8")
    anchor = "      batch: configure_batch # every change of a sync in one /configure request\n"
    assert anchor in text
    provider = load_provider_text(text.replace(anchor, anchor + "      batchSize: 2\n", 1))
    assert provider.dictionary.services[SERVICE].batch_size == 2
    session = Session(provider, lab.ref, lab.creds.values, lab.session.connections)
    lab.session = session

    await lab.reset_requests()
    result = await lab.sync(SERVICE, [rule(n) for n in (10, 20, 30, 40, 50)])
    assert result.remaining == [], result.remaining
    log = await writes(lab)
    assert (log["/configure"], log["/config-file"]) == (3, 1), log
    assert await numbers(lab) == [10, 20, 30, 40, 50]


async def test_a_rejected_batch_changes_nothing_and_the_next_sync_converges(lab: Lab) -> None:
    # VyOS refuses a port without a port protocol at commit: the whole session is discarded.
    bad = rule(20, "22", protocol="icmp")
    await lab.reset_requests()
    with pytest.raises(DeviceError) as failed:
        await lab.sync(SERVICE, [rule(10), bad])
    assert "a batch of 2 change(s) failed" in str(failed.value)
    assert "Protocol must be tcp, udp, or tcp_udp" in failed.value.device_message
    assert await numbers(lab) == []
    assert (await writes(lab))["/config-file"] == 0, "nothing to save after a failed batch"

    result = await lab.sync(SERVICE, [rule(10), rule(20)])
    assert result.applied["create"] == 2 and result.remaining == [], result.remaining
    assert await numbers(lab) == [10, 20]


@pytest.fixture
async def iosxe() -> AsyncIterator[Lab]:
    case = next(c for c in CASE_LIST if c.provider == "cisco-iosxe")
    opened = await open_lab(case)
    try:
        yield opened
    finally:
        await opened.close()


async def test_iosxe_changes_go_in_one_configuration_session(iosxe: Lab) -> None:
    """Interfaces, ACL entries: a sync's lines go in one CLI session, then one `write memory`:
    list + batch + commit + verify list = 4 device requests, whatever the number of changes."""
    loopbacks = [
        {"name": f"Loopback{n}", "description": f"batch {n}", "ipv4": f"10.9.{n}.1/32"} for n in (1, 2, 3)
    ]
    first = await iosxe.sync("interfaces", loopbacks, policy=Policy.REPLACED)
    assert first.applied["create"] == 3 and first.remaining == [], first.remaining
    assert first.device_requests == 4, first.changes

    changed = [{**loopbacks[0], "description": "batch one"}, loopbacks[2]]
    second = await iosxe.sync("interfaces", changed, managed_keys=first.managed_keys)
    assert second.plan is not None
    counts = second.plan.counts()
    assert (counts["update"], counts["delete"]) == (1, 1), second.plan.summary()
    assert second.remaining == [] and second.device_requests == 4, second.remaining
    listed = {i["name"]: i for i in await iosxe.listed("interfaces")}
    assert "Loopback2" not in listed
    assert listed["Loopback1"]["description"] == "batch one"
    assert listed["Loopback3"]["ipv4"] == "10.9.3.1/32"


@pytest.mark.parametrize(("provider", "moves"), [("fortigate", 1), ("opnsense", 0)])
async def test_an_insert_lands_in_place_with_the_fewest_moves(provider: str, moves: int) -> None:
    """FortiOS appends a new policy: one move right after the create places it. OPNsense sorts by
    `sequence`: the new rule gets a value between its neighbours', and needs no move at all."""
    case = next(c for c in CASE_LIST if c.provider == provider)
    lab = await open_lab(case)
    try:
        a, b, c = case.service("firewall_rules")["trio"]
        first = await lab.sync("firewall_rules", [a, c])
        await lab.reset_requests()
        result = await lab.sync("firewall_rules", [a, b, c], managed_keys=first.managed_keys)
        assert result.remaining == [], result.remaining
        assert (result.applied["create"], result.applied["move"]) == (1, moves), result.changes
        keys = [lab.key("firewall_rules", x) for x in (a, b, c)]
        listed = [lab.key("firewall_rules", i, desired=False) for i in await lab.listed("firewall_rules")]
        assert [k for k in listed if k in keys] == keys
        # FortiGate: the create (POST) and its move (PUT); OPNsense: the create and the apply.
        written = [(r["method"], str(r["path"])) for r in await lab.requests() if lab.is_write(r)]
        assert [m for m, _ in written] == (["POST", "PUT"] if moves else ["POST", "POST"]), written
        assert not any("move" in path.lower() for _, path in written), written
    finally:
        await lab.close()
