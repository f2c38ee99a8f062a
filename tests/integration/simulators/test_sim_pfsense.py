"""Faithfulness of the pfSense REST v2 simulator (vendor-apis.md section 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from vnf_operator.testing.simulators import PfsenseSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

USER = PfsenseSimulator.default_credentials.username
PASSWORD = PfsenseSimulator.default_credentials.password
KEY = PfsenseSimulator.default_credentials.api_key
RULE = {"type": "pass", "interface": ["lan"], "source": "any", "destination": "any"}


@pytest.fixture
async def sim() -> AsyncIterator[PfsenseSimulator]:
    simulator = PfsenseSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: PfsenseSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, headers={"X-API-Key": KEY}) as client:
        yield client


async def create_rule(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.post("/api/v2/firewall/rule", json={**RULE, **fields})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_envelope_and_auth_methods(sim: PfsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        denied = await client.get("/api/v2/firewall/rules")
        assert denied.status_code == 401
        assert denied.json() == {
            "code": 401,
            "status": "unauthorized",
            "response_id": "AUTH_AUTHENTICATION_FAILED",
            "message": "Authentication failed.",
            "data": [],
        }
        wrong_key = await client.get("/api/v2/firewall/rules", headers={"X-API-Key": "nope"})
        assert wrong_key.status_code == 401
        basic = await client.get("/api/v2/firewall/rules", auth=(USER, PASSWORD))
        assert basic.json() == {
            "code": 200,
            "status": "ok",
            "response_id": "SUCCESS",
            "message": "",
            "data": [],
        }
        token = (await client.post("/api/v2/auth/jwt", auth=(USER, PASSWORD), json={})).json()["data"][
            "token"
        ]
        bearer = await client.get("/api/v2/firewall/rules", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200


async def test_create_returns_the_object_with_id_and_tracker(api: httpx.AsyncClient) -> None:
    first = await create_rule(api, descr="first", protocol="tcp", destination_port="443")
    second = await create_rule(api, descr="second")
    assert first["id"] == 0
    assert second["id"] == 1
    assert isinstance(first["tracker"], int)
    assert second["tracker"] > first["tracker"]
    assert first["disabled"] is False
    assert first["created_by"].startswith("admin@")
    fetched = (await api.get("/api/v2/firewall/rule", params={"id": 1})).json()["data"]
    assert fetched["descr"] == "second"


async def test_ids_are_positions_that_shift_after_deletes_but_trackers_stay(api: httpx.AsyncClient) -> None:
    rules = [await create_rule(api, descr=name) for name in ("a", "b", "c")]
    deleted = await api.delete("/api/v2/firewall/rule", params={"id": 0})
    assert deleted.json()["data"]["descr"] == "a"
    listing = (await api.get("/api/v2/firewall/rules")).json()["data"]
    assert [(row["id"], row["descr"]) for row in listing] == [(0, "b"), (1, "c")]
    assert [row["tracker"] for row in listing] == [rules[1]["tracker"], rules[2]["tracker"]]
    gone = await api.get("/api/v2/firewall/rule", params={"id": 2})
    assert gone.status_code == 404
    assert gone.json()["response_id"] == "MODEL_OBJECT_NOT_FOUND"


async def test_validation_errors(api: httpx.AsyncClient) -> None:
    missing = await api.post(
        "/api/v2/firewall/rule", json={"interface": ["lan"], "source": "any", "destination": "any"}
    )
    assert missing.status_code == 400
    assert missing.json()["response_id"] == "FIELD_IS_REQUIRED"
    assert missing.json()["message"] == "Field `type` is required."
    choice = await api.post("/api/v2/firewall/rule", json={**RULE, "type": "allow"})
    assert choice.json()["response_id"] == "FIELD_INVALID_CHOICE"
    wrong_type = await api.post("/api/v2/firewall/rule", json={**RULE, "disabled": "yes"})
    assert wrong_type.json()["response_id"] == "FIELD_INVALID_TYPE"
    ports = await api.post(
        "/api/v2/firewall/rule", json={**RULE, "protocol": "icmp", "destination_port": "80"}
    )
    assert ports.status_code == 400
    bad_if = await api.post("/api/v2/firewall/rule", json={**RULE, "interface": ["dmz9"]})
    assert bad_if.json()["response_id"] == "FIELD_INVALID_CHOICE"
    assert (await api.get("/api/v2/firewall/rules")).json()["data"] == []


async def test_patch_updates_and_missing_id_is_rejected(api: httpx.AsyncClient) -> None:
    await create_rule(api, descr="old")
    patched = await api.patch("/api/v2/firewall/rule", json={"id": 0, "descr": "new", "log": True})
    assert patched.json()["data"]["descr"] == "new"
    assert patched.json()["data"]["log"] is True
    assert patched.json()["data"]["type"] == "pass"
    no_id = await api.patch("/api/v2/firewall/rule", json={"descr": "x"})
    assert no_id.status_code == 400
    assert no_id.json()["message"] == "Field `id` is required."


async def test_changes_are_pending_until_apply(sim: PfsenseSimulator, api: httpx.AsyncClient) -> None:
    await create_rule(api, descr="staged")
    status = (await api.get("/api/v2/firewall/apply")).json()["data"]
    assert status == {"applied": False, "pending_subsystems": ["filter"]}
    assert sim.dump_state()["running"]["FirewallRule"] == []
    applied = (await api.post("/api/v2/firewall/apply", json={})).json()["data"]
    assert applied == {"applied": True, "pending_subsystems": []}
    assert [r["descr"] for r in sim.dump_state()["running"]["FirewallRule"]] == ["staged"]
    await create_rule(api, descr="now", apply=True)
    assert (await api.get("/api/v2/firewall/apply")).json()["data"]["applied"] is True


async def test_plural_get_filters_paging_put_and_delete(api: httpx.AsyncClient) -> None:
    for name in ("web", "ssh", "webmail"):
        await create_rule(api, descr=name)
    contains = (await api.get("/api/v2/firewall/rules", params={"descr__contains": "web"})).json()["data"]
    assert [row["descr"] for row in contains] == ["web", "webmail"]
    page = (await api.get("/api/v2/firewall/rules", params={"limit": 1, "offset": 1})).json()["data"]
    assert [row["id"] for row in page] == [1]
    deleted = await api.delete("/api/v2/firewall/rules", params={"descr__startswith": "web"})
    assert [row["descr"] for row in deleted.json()["data"]] == ["web", "webmail"]
    assert [row["descr"] for row in (await api.get("/api/v2/firewall/rules")).json()["data"]] == ["ssh"]
    refused = await api.delete("/api/v2/firewall/rules")
    assert refused.status_code == 400
    replaced = await api.put("/api/v2/firewall/rules", json=[{**RULE, "descr": "only"}])
    assert [row["descr"] for row in replaced.json()["data"]] == ["only"]
    await api.delete("/api/v2/firewall/rules", params={"all": "true"})
    assert (await api.get("/api/v2/firewall/rules")).json()["data"] == []


async def test_nat_and_routes(sim: PfsenseSimulator, api: httpx.AsyncClient) -> None:
    needs_ports = await api.post(
        "/api/v2/firewall/nat/port_forward",
        json={
            "interface": "wan",
            "protocol": "tcp",
            "source": "any",
            "destination": "wanip",
            "target": "192.168.1.10",
        },
    )
    assert needs_ports.json()["message"] == "Field `destination_port` is required."
    forward = await api.post(
        "/api/v2/firewall/nat/port_forward",
        json={
            "interface": "wan",
            "protocol": "tcp",
            "source": "any",
            "destination": "wanip",
            "destination_port": "8080",
            "target": "192.168.1.10",
            "local_port": "80",
        },
    )
    assert forward.json()["data"]["id"] == 0
    mode = await api.patch("/api/v2/firewall/nat/outbound/mode", json={"mode": "hybrid"})
    assert mode.json()["data"] == {"mode": "hybrid"}
    mapping = await api.post(
        "/api/v2/firewall/nat/outbound/mapping",
        json={"interface": "wan", "source": "192.168.1.0/24", "destination": "any", "target": "wanip"},
    )
    assert mapping.status_code == 200
    route = await api.post(
        "/api/v2/routing/static_route", json={"network": "10.0.0.0/8", "gateway": "WAN_GW"}
    )
    assert route.json()["data"] == {
        "id": 0,
        "network": "10.0.0.0/8",
        "gateway": "WAN_GW",
        "descr": "",
        "disabled": False,
    }
    bad_gw = await api.post(
        "/api/v2/routing/static_route", json={"network": "10.1.0.0/16", "gateway": "NOPE"}
    )
    assert bad_gw.status_code == 400
    assert (await api.get("/api/v2/routing/apply")).json()["data"]["pending_subsystems"] == ["staticroutes"]
    await api.post("/api/v2/routing/apply", json={})
    assert sim.dump_state()["running"]["StaticRoute"][0]["network"] == "10.0.0.0/8"
    assert (await api.get("/api/v2/firewall/apply")).json()["data"]["pending_subsystems"] == ["natconf"]


async def test_unknown_endpoint_and_method(api: httpx.AsyncClient) -> None:
    unknown = await api.get("/api/v2/does/not/exist")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 404
    method = await api.put("/api/v2/firewall/rule", json={})
    assert method.status_code == 405


async def test_restart_rebuilds_running_from_config(sim: PfsenseSimulator, api: httpx.AsyncClient) -> None:
    await create_rule(api, descr="saved")
    await sim.restart()
    state = sim.dump_state()
    assert [r["descr"] for r in state["running"]["FirewallRule"]] == ["saved"]
    assert state["pending_subsystems"] == []


async def test_factory_defaults_create_an_api_key() -> None:
    sim = PfsenseSimulator(SimulatorConfig(factory_defaults=True))
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            assert (await client.get("/api/v2/firewall/rules", headers={"X-API-Key": KEY})).status_code == 401
            created = await client.post(
                "/api/v2/auth/key", auth=("admin", "pfsense"), json={"descr": "operator"}
            )
            key = created.json()["data"]["key"]
            ok = await client.get("/api/v2/system/version", headers={"X-API-Key": key})
            assert ok.json()["data"]["version"] == "2.7.2-RELEASE"
            assert key not in str(sim.dump_state())
    finally:
        await sim.stop()
