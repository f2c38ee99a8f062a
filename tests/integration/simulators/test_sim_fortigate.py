"""Faithfulness of the FortiGate simulator (vendor-apis.md section 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from vnf_operator.testing.simulators import FortigateSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

TOKEN = FortigateSimulator.default_credentials.api_key
POLICY = "/api/v2/cmdb/firewall/policy"


def policy(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "srcintf": [{"name": "port1"}],
        "dstintf": [{"name": "port2"}],
        "srcaddr": [{"name": "all"}],
        "dstaddr": [{"name": "all"}],
        "service": [{"name": "HTTPS"}],
        "schedule": "always",
        "action": "accept",
        **extra,
    }


@pytest.fixture
async def sim() -> AsyncIterator[FortigateSimulator]:
    simulator = FortigateSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: FortigateSimulator) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=sim.base_url, headers=headers) as client:
        yield client


async def test_token_auth(sim: FortigateSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        assert (await client.get(POLICY)).status_code == 401
        bad = await client.get(POLICY, headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401
        # The access_token URL parameter is off by default from 7.4.5 (default firmware 7.4.4).
        assert (await client.get(POLICY, params={"access_token": TOKEN})).status_code == 200
    newer = FortigateSimulator(SimulatorConfig(firmware_version="7.6.0"))
    await newer.start()
    try:
        async with httpx.AsyncClient(base_url=newer.base_url) as client:
            assert (await client.get(POLICY, params={"access_token": TOKEN})).status_code == 401
    finally:
        await newer.stop()


async def test_envelope_and_policy_creation(api: httpx.AsyncClient) -> None:
    listing = (await api.get(POLICY)).json()
    for key in (
        "http_method",
        "revision",
        "results",
        "vdom",
        "path",
        "name",
        "status",
        "serial",
        "version",
        "build",
    ):
        assert key in listing
    assert listing["status"] == "success"
    assert listing["http_status"] == 200
    assert listing["path"] == "firewall"
    assert listing["name"] == "policy"
    created = (await api.post(POLICY, json=policy("web", policyid=0))).json()
    assert created["mkey"] == 1
    assert created["revision_changed"] is True
    assert created["revision"] != listing["revision"]
    row = (await api.get(f"{POLICY}/1")).json()["results"][0]
    assert row["policyid"] == 1
    assert row["q_origin_key"] == 1
    assert row["srcintf"] == [{"name": "port1", "q_origin_key": "port1"}]
    assert row["nat"] == "disable"
    assert row["status"] == "enable"


async def test_error_codes(api: httpx.AsyncClient) -> None:
    missing = await api.get(f"{POLICY}/99")
    assert missing.status_code == 404
    assert missing.json()["error"] == -3
    assert missing.json()["status"] == "error"
    assert missing.json()["http_status"] == 404
    await api.post(POLICY, json=policy("one", policyid=7))
    duplicate = await api.post(POLICY, json=policy("two", policyid=7))
    assert duplicate.status_code == 500
    assert duplicate.json()["error"] == -5
    bad_ref = await api.post(POLICY, json=policy("x", dstaddr=[{"name": "no-such-address"}]))
    assert bad_ref.status_code == 424
    assert bad_ref.json()["error"] == -3
    bad_value = await api.post(POLICY, json=policy("x", action="allow"))
    assert bad_value.status_code == 500
    assert bad_value.json()["error"] == -651
    missing_attr = await api.post(POLICY, json={"name": "bare", "action": "accept"})
    assert missing_attr.status_code == 424
    update_missing = await api.put(f"{POLICY}/4242", json={"comments": "x"})
    assert update_missing.status_code == 404


async def test_put_updates_and_delete_removes(api: httpx.AsyncClient) -> None:
    await api.post(POLICY, json=policy("web"))
    updated = await api.put(f"{POLICY}/1", json={"nat": "enable", "comments": "changed"})
    assert updated.json()["mkey"] == 1
    row = (await api.get(f"{POLICY}/1")).json()["results"][0]
    assert (row["nat"], row["comments"], row["name"]) == ("enable", "changed", "web")
    assert (await api.delete(f"{POLICY}/1")).json()["status"] == "success"
    assert (await api.get(POLICY)).json()["results"] == []


async def test_move_before_and_after(api: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c"):
        await api.post(POLICY, json=policy(name))
    moved = await api.put(f"{POLICY}/3", params={"action": "move", "before": "1"})
    assert moved.json()["status"] == "success"
    order = [row["name"] for row in (await api.get(POLICY)).json()["results"]]
    assert order == ["c", "a", "b"]
    await api.put(f"{POLICY}/3", params={"action": "move", "after": "2"})
    assert [row["policyid"] for row in (await api.get(POLICY)).json()["results"]] == [1, 2, 3]


async def test_filters_and_format(api: httpx.AsyncClient) -> None:
    await api.post(POLICY, json=policy("web-in"))
    await api.post(POLICY, json=policy("ssh-in", action="deny"))
    accepted = (await api.get(POLICY, params={"filter": "action==accept"})).json()["results"]
    assert [row["name"] for row in accepted] == ["web-in"]
    both = (await api.get(POLICY, params=[("filter", "name=@-in"), ("filter", "action!=accept")])).json()
    assert [row["name"] for row in both["results"]] == ["ssh-in"]
    slim = (await api.get(POLICY, params={"format": "policyid|name"})).json()["results"]
    assert slim == [{"policyid": 1, "name": "web-in"}, {"policyid": 2, "name": "ssh-in"}]


async def test_static_routes_vips_and_bgp(api: httpx.AsyncClient) -> None:
    route = await api.post(
        "/api/v2/cmdb/router/static", json={"dst": "10.0.0.0/8", "gateway": "10.0.1.254", "device": "port1"}
    )
    assert route.json()["mkey"] == 1
    row = (await api.get("/api/v2/cmdb/router/static/1")).json()["results"][0]
    assert row["dst"] == "10.0.0.0 255.0.0.0"
    assert row["distance"] == 10
    vip = await api.post(
        "/api/v2/cmdb/firewall/vip",
        json={
            "name": "web-vip",
            "extip": "203.0.113.10",
            "mappedip": [{"range": "10.0.2.10"}],
            "extintf": "port1",
        },
    )
    assert vip.json()["mkey"] == "web-vip"
    uses_vip = await api.post(POLICY, json=policy("to-vip", dstaddr=[{"name": "web-vip"}]))
    assert uses_vip.json()["status"] == "success"
    await api.put("/api/v2/cmdb/router/bgp", json={"as": 65001, "router-id": "10.0.1.1"})
    added = await api.post("/api/v2/cmdb/router/bgp/neighbor", json={"ip": "192.0.2.2", "remote-as": 65002})
    assert added.json()["mkey"] == "192.0.2.2"
    bgp = (await api.get("/api/v2/cmdb/router/bgp")).json()["results"]
    assert bgp["as"] == 65001
    assert bgp["neighbor"][0]["remote-as"] == 65002
    neighbors = (await api.get("/api/v2/cmdb/router/bgp/neighbor/192.0.2.2")).json()["results"]
    assert neighbors[0]["ip"] == "192.0.2.2"


async def test_changes_are_live_and_survive_restart(sim: FortigateSimulator, api: httpx.AsyncClient) -> None:
    await api.post(POLICY, json=policy("kept"))
    await sim.restart()
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        assert [row["name"] for row in (await client.get(POLICY)).json()["results"]] == ["kept"]
        status = (await client.get("/api/v2/monitor/system/status")).json()
        assert status["version"] == "v7.4.4"
        assert status["results"]["hostname"] == "FGVM01"
