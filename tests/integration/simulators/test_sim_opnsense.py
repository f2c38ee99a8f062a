"""Faithfulness of the OPNsense simulator against the shapes in vendor-apis.md section 1."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from vnf_operator.testing.simulators import OpnsenseSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

KEY = OpnsenseSimulator.default_credentials.api_key
SECRET = OpnsenseSimulator.default_credentials.api_secret


async def _started(**kwargs: Any) -> OpnsenseSimulator:
    sim = OpnsenseSimulator(SimulatorConfig(**kwargs))
    await sim.start()
    return sim


@pytest.fixture
async def sim() -> AsyncIterator[OpnsenseSimulator]:
    simulator = await _started()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: OpnsenseSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        yield client


async def state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/_sim/state")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def add_rule(client: httpx.AsyncClient, **fields: Any) -> str:
    response = await client.post("/api/firewall/filter/addRule", json={"rule": fields})
    body = response.json()
    assert response.status_code == 200
    assert body["result"] == "saved", body
    return str(body["uuid"])


# --------------------------------------------------------------------------- auth and routing


async def test_missing_and_wrong_credentials_get_401(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as anonymous:
        response = await anonymous.get("/api/firewall/filter/searchRule")
        assert response.status_code == 401
        assert response.json() == {"status": 401, "message": "Authentication Failed"}
        wrong = await anonymous.get("/api/firewall/filter/searchRule", auth=(KEY, "not-the-secret"))
        assert wrong.status_code == 401
        # The root password is not an API credential.
        root = await anonymous.get("/api/firewall/filter/searchRule", auth=("root", "opnsense"))
        assert root.status_code == 401


async def test_unknown_endpoint_is_404_with_error_message(api: httpx.AsyncClient) -> None:
    for path in ("/api/firewall/filter/noSuchAction", "/api/firewall/nosuch/searchRule", "/api/x"):
        response = await api.get(path)
        assert response.status_code == 404
        assert response.json() == {"errorMessage": "Endpoint not found"}


async def test_snake_case_camel_case_and_lower_case_actions_are_the_same(
    api: httpx.AsyncClient,
) -> None:
    await add_rule(api, description="one")
    totals = set()
    for action in ("searchRule", "search_rule", "searchrule"):
        response = await api.get(f"/api/firewall/filter/{action}")
        assert response.status_code == 200
        totals.add(response.json()["total"])
    assert totals == {1}
    stats = (await api.get("/_sim/stats")).json()
    assert stats["requests"]["GET /api/firewall/filter/searchRule"] == 3
    # The controller name is camelized too: source_nat == SourceNat.
    assert (await api.get("/api/firewall/sourceNat/searchRule")).status_code == 200


# --------------------------------------------------------------------------- rule shapes


async def test_add_rule_returns_uuid4_and_get_rule_uses_option_maps(api: httpx.AsyncClient) -> None:
    rule_uuid = await add_rule(
        api, action="block", interface="lan", protocol="tcp", destination_port="443", description="web"
    )
    assert uuid.UUID(rule_uuid).version == 4
    rule = (await api.get(f"/api/firewall/filter/getRule/{rule_uuid}")).json()["rule"]
    assert rule["action"]["block"] == {"value": "Block", "selected": 1}
    assert rule["action"]["pass"]["selected"] == 0
    assert rule["interface"]["lan"] == {"value": "LAN", "selected": 1}
    assert rule["protocol"]["TCP"]["selected"] == 1  # upper-cased on write
    assert rule["enabled"] == "1"
    assert rule["destination_port"] == "443"  # port and network fields stay plain strings
    assert rule["source_net"] == "any"
    # Optional single-select fields carry a blank entry.
    assert rule["gateway"][""] == {"value": "none", "selected": 1}


async def test_search_rule_rows_are_flat_strings_with_labels(api: httpx.AsyncClient) -> None:
    await add_rule(api, action="reject", interface="wan", log=True, description="flat")
    body = (await api.get("/api/firewall/filter/searchRule")).json()
    assert set(body) == {"rows", "rowCount", "total", "current"}
    row = body["rows"][0]
    assert row["action"] == "reject"
    assert row["%action"] == "Reject"
    assert row["interface"] == "wan"
    assert row["%interface"] == "WAN"
    assert row["log"] == "1"  # JSON true became the string "1"
    assert row["quick"] == "1"
    assert row["sort_order"] == f"400000.0{int(row['sequence']):06d}"


async def test_get_rule_without_uuid_returns_defaults_and_unknown_uuid_an_empty_list(
    api: httpx.AsyncClient,
) -> None:
    defaults = (await api.get("/api/firewall/filter/getRule")).json()["rule"]
    assert defaults["action"]["pass"]["selected"] == 1
    assert defaults["direction"]["in"]["selected"] == 1
    unknown = await api.get(f"/api/firewall/filter/getRule/{uuid.uuid4()}")
    assert unknown.status_code == 200
    assert unknown.json() == []


async def test_sequence_defaults_to_the_end(api: httpx.AsyncClient) -> None:
    first = await add_rule(api, description="a")
    second = await add_rule(api, description="b")
    rules = {r["uuid"]: r for r in (await state(api))["config"]["filter_rules"]}
    assert int(rules[second]["sequence"]) == int(rules[first]["sequence"]) + 1


# --------------------------------------------------------------------------- validation


async def test_validation_errors_are_http_200_with_field_messages(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/firewall/filter/addRule",
        json={
            "rule": {
                "action": "allow",
                "direction": "sideways",
                "ipprotocol": "ipx",
                "source_net": "10.0.0.0/33",
                "destination_port": "70000",
                "protocol": "tcp",
            }
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == "failed"
    validations = body["validations"]
    assert validations["rule.action"] == "option not in list"
    assert validations["rule.direction"] == "option not in list"
    assert validations["rule.ipprotocol"] == "option not in list"
    assert validations["rule.source_net"] == "10.0.0.0/33 is not a valid source IP address or alias."
    assert validations["rule.destination_port"] == "Please specify a valid portnumber, name, alias or range."
    assert (await state(api))["config"]["filter_rules"] == []


async def test_a_field_with_several_messages_gets_a_list(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/firewall/filter/addRule", json={"rule": {"protocol": "icmp", "source_port": "99999"}}
    )
    messages = response.json()["validations"]["rule.source_port"]
    assert messages == [
        "Please specify a valid portnumber, name, alias or range.",
        "Source ports are only valid for tcp or udp type rules.",
    ]


async def test_address_family_and_port_ranges(api: httpx.AsyncClient) -> None:
    mismatch = await api.post(
        "/api/firewall/filter/addRule", json={"rule": {"destination_net": "2001:db8::/64"}}
    )
    assert mismatch.json()["validations"] == {
        "rule.destination_net": "Destination address type should match selected TCP/IP protocol version."
    }
    ok = await api.post(
        "/api/firewall/filter/addRule",
        json={"rule": {"protocol": "TCP/UDP", "destination_port": "8000-8080", "source_port": "https"}},
    )
    assert ok.json()["result"] == "saved"
    backwards = await api.post(
        "/api/firewall/filter/addRule", json={"rule": {"protocol": "tcp", "destination_port": "90-80"}}
    )
    assert "rule.destination_port" in backwards.json()["validations"]


# --------------------------------------------------------------------------- set, delete, toggle, move


async def test_set_rule_merges_partial_updates(api: httpx.AsyncClient) -> None:
    rule_uuid = await add_rule(api, action="pass", interface="lan", description="before")
    response = await api.post(
        f"/api/firewall/filter/setRule/{rule_uuid}", json={"rule": {"description": "after"}}
    )
    assert response.json() == {"result": "saved"}
    rule = (await api.get(f"/api/firewall/filter/getRule/{rule_uuid}")).json()["rule"]
    assert rule["description"] == "after"
    assert rule["interface"]["lan"]["selected"] == 1


async def test_set_rule_is_an_upsert_for_valid_uuids_only(api: httpx.AsyncClient) -> None:
    client_uuid = str(uuid.uuid4())
    created = await api.post(
        f"/api/firewall/filter/setRule/{client_uuid}", json={"rule": {"description": "up"}}
    )
    assert created.json() == {"result": "saved"}
    rules = (await state(api))["config"]["filter_rules"]
    assert [r["uuid"] for r in rules] == [client_uuid]
    bogus = await api.post("/api/firewall/filter/setRule/not-a-uuid", json={"rule": {"description": "x"}})
    assert bogus.json() == {"result": "failed"}


async def test_delete_then_delete_again(api: httpx.AsyncClient) -> None:
    rule_uuid = await add_rule(api, description="gone")
    first = await api.post(f"/api/firewall/filter/delRule/{rule_uuid}")
    assert first.json() == {"result": "deleted"}
    second = await api.post(f"/api/firewall/filter/delRule/{rule_uuid}")
    assert second.json() == {"result": "not found"}


async def test_toggle_rule(api: httpx.AsyncClient) -> None:
    rule_uuid = await add_rule(api, description="t")
    flipped = await api.post(f"/api/firewall/filter/toggleRule/{rule_uuid}")
    assert flipped.json() == {"result": "Disabled", "changed": True}
    explicit = await api.post(f"/api/firewall/filter/toggleRule/{rule_uuid}/0")
    assert explicit.json() == {"result": "Disabled", "changed": False}
    enabled = await api.post(f"/api/firewall/filter/toggleRule/{rule_uuid}/1")
    assert enabled.json() == {"result": "Enabled", "changed": True}
    missing = await api.post(f"/api/firewall/filter/toggleRule/{uuid.uuid4()}")
    assert missing.json() == {"result": "failed"}


async def test_move_rule_before_reorders_within_the_interface_group(api: httpx.AsyncClient) -> None:
    first = await add_rule(api, interface="lan", description="first")
    second = await add_rule(api, interface="lan", description="second")
    third = await add_rule(api, interface="lan", description="third")
    response = await api.post(f"/api/firewall/filter/moveRuleBefore/{third}/{first}")
    assert response.json() == {"status": "ok"}
    rows = (await api.get("/api/firewall/filter/searchRule")).json()["rows"]
    assert [row["uuid"] for row in rows] == [third, first, second]
    floating = await add_rule(api, description="floating")  # no interface: another priority group
    refused = await api.post(f"/api/firewall/filter/moveRuleBefore/{floating}/{first}")
    assert refused.status_code == 500
    assert refused.json() == {
        "errorMessage": "Cannot move 'Floating Rule' before 'Interface Rule'.",
        "errorTitle": "Filter",
    }
    unknown = await api.post(f"/api/firewall/filter/moveRuleBefore/{uuid.uuid4()}/{first}")
    assert unknown.status_code == 500
    assert "errorMessage" in unknown.json()


async def test_mutating_actions_called_with_get_answer_failed(api: httpx.AsyncClient) -> None:
    rule_uuid = await add_rule(api, description="keep")
    assert (await api.get("/api/firewall/filter/addRule")).json() == {"result": "failed"}
    assert (await api.get(f"/api/firewall/filter/delRule/{rule_uuid}")).json() == {"result": "failed"}
    assert (await api.get("/api/firewall/filter/apply")).json() == {"status": "error"}
    assert len((await state(api))["config"]["filter_rules"]) == 1


async def test_invalid_or_empty_json_body_is_400(api: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    for body in (b"{not json", b""):
        response = await api.post("/api/firewall/filter/addRule", content=body, headers=headers)
        assert response.status_code == 400
        assert response.json() == {"status": 400, "message": "Invalid JSON syntax"}


async def test_php_style_form_bodies_are_accepted(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/firewall/filter/addRule", data={"rule[action]": "block", "rule[description]": "form"}
    )
    assert response.json()["result"] == "saved"
    rows = (await api.get("/api/firewall/filter/searchRule")).json()["rows"]
    assert rows[0]["action"] == "block"


async def test_search_paging_sorting_and_phrase(api: httpx.AsyncClient) -> None:
    for name in ("alpha", "bravo", "charlie", "delta"):
        await add_rule(api, description=name)
    page = (
        await api.post(
            "/api/firewall/filter/searchRule",
            json={"current": 2, "rowCount": 3, "sort": {"description": "desc"}},
        )
    ).json()
    assert page["total"] == 4
    assert page["current"] == 2
    assert [row["description"] for row in page["rows"]] == ["alpha"]
    found = (await api.get("/api/firewall/filter/searchRule", params={"searchPhrase": "CHAR"})).json()
    assert [row["description"] for row in found["rows"]] == ["charlie"]
    by_query = (await api.get("/api/firewall/filter/searchRule", params={"sort[description]": "asc"})).json()
    assert by_query["rows"][0]["description"] == "alpha"


# --------------------------------------------------------------------------- staging and restart


async def test_changes_are_staged_until_apply(api: httpx.AsyncClient) -> None:
    rule_uuid = await add_rule(api, action="block", description="staged")
    before = await state(api)
    assert before["pending"]["filter"] is True
    assert before["running"]["filter_rules"] == []
    applied = await api.post("/api/firewall/filter/apply", json={})
    assert applied.json() == {"status": "OK\n\n"}
    after = await state(api)
    assert after["pending"]["filter"] is False
    assert [r["uuid"] for r in after["running"]["filter_rules"]] == [rule_uuid]
    # A delete leaves the model at once, but pf keeps the rule until the next apply.
    await api.post(f"/api/firewall/filter/delRule/{rule_uuid}")
    deleted = await state(api)
    assert deleted["config"]["filter_rules"] == []
    assert [r["uuid"] for r in deleted["running"]["filter_rules"]] == [rule_uuid]


async def test_restart_keeps_config_and_rebuilds_running_from_it(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        rule_uuid = await add_rule(client, description="saved in config.xml")
        assert (await state(client))["running"]["filter_rules"] == []
    url = sim.base_url
    await sim.restart()
    assert sim.base_url == url
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        after = await state(client)
        assert [r["uuid"] for r in after["config"]["filter_rules"]] == [rule_uuid]
        assert [r["uuid"] for r in after["running"]["filter_rules"]] == [rule_uuid]
        assert after["pending"]["filter"] is False


async def test_admin_restart_endpoint(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        await add_rule(client, description="x")
        response = await client.post("/_sim/restart")
        assert response.json() == {"status": "restarting"}
        for _ in range(100):
            try:
                current = await state(client)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
                continue
            if current["running"]["filter_rules"]:
                break
            await asyncio.sleep(0.05)
        assert len(current["running"]["filter_rules"]) == 1


# --------------------------------------------------------------------------- savepoints (<= 25.7)


async def test_savepoint_apply_cancel_and_revert(api: httpx.AsyncClient) -> None:
    keep = await add_rule(api, description="keep")
    await api.post("/api/firewall/filter/apply", json={})
    savepoint = (await api.post("/api/firewall/filter/savepoint", json={})).json()
    assert savepoint["status"] == "ok"
    revision = savepoint["revision"]
    risky = await add_rule(api, description="risky")
    await api.post(f"/api/firewall/filter/apply/{revision}", json={})
    assert (await state(api))["rollback"]["armed"] == revision
    cancel = await api.post(f"/api/firewall/filter/cancelRollback/{revision}", json={})
    assert cancel.json() == {"status": "ok"}
    assert (await state(api))["rollback"]["armed"] is None
    reverted = await api.post(f"/api/firewall/filter/revert/{revision}", json={})
    assert reverted.json() == {"status": "ok"}
    current = await state(api)
    assert [r["uuid"] for r in current["config"]["filter_rules"]] == [keep]
    assert [r["uuid"] for r in current["running"]["filter_rules"]] == [keep]
    assert risky not in {r["uuid"] for r in current["running"]["filter_rules"]}
    unknown = await api.post("/api/firewall/filter/revert/123.456", json={})
    assert unknown.json() == {"status": "unknown (or removed) savepoint"}


async def test_unconfirmed_apply_rolls_back_by_itself() -> None:
    sim = await _started(time_scale=0.001)  # the 60 s timer becomes 60 ms
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as api:
            revision = (await api.post("/api/firewall/filter/savepoint", json={})).json()["revision"]
            await add_rule(api, description="locks me out")
            await api.post(f"/api/firewall/filter/apply/{revision}", json={})
            for _ in range(500):
                current = await state(api)
                if current["rollback"]["log"]:
                    break
                await asyncio.sleep(0.02)
            assert current["rollback"]["log"] == [{"revision": revision, "reason": "timeout"}]
            assert current["config"]["filter_rules"] == []
            assert current["running"]["filter_rules"] == []
    finally:
        await sim.stop()


async def test_savepoint_actions_are_gone_in_26_7() -> None:
    sim = await _started(firmware_version="26.7")
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as api:
            for action in ("savepoint", "revert/1", "cancelRollback/1"):
                response = await api.post(f"/api/firewall/filter/{action}", json={})
                assert response.status_code == 404
            assert (await api.post("/api/firewall/filter/apply", json={})).status_code == 200
    finally:
        await sim.stop()


# --------------------------------------------------------------------------- NAT


async def test_source_nat_rules_and_target_validation(api: httpx.AsyncClient) -> None:
    bad = await api.post("/api/firewall/source_nat/addRule", json={"rule": {"target": "any"}})
    assert bad.json()["validations"] == {"rule.target": "Target address cannot be any."}
    good = await api.post(
        "/api/firewall/source_nat/addRule",
        json={"rule": {"interface": "wan", "source_net": "192.168.1.0/24", "target": "wanip"}},
    )
    assert good.json()["result"] == "saved"
    row = (await api.get("/api/firewall/source_nat/searchRule")).json()["rows"][0]
    assert row["interface"] == "wan"
    assert row["target"] == "wanip"
    await api.post("/api/firewall/source_nat/apply", json={})
    assert len((await state(api))["running"]["snat_rules"]) == 1


async def test_port_forward_api_only_exists_from_26_1(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/firewall/d_nat/searchRule")
    assert response.status_code == 404
    sim = await _started(firmware_version="26.1")
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
            created = await client.post(
                "/api/firewall/d_nat/addRule",
                json={
                    "rule": {
                        "interface": "wan",
                        "protocol": "TCP",
                        "destination": {"network": "wanip", "port": "8080"},
                        "target": "192.168.1.10",
                        "local-port": "80",
                        "descr": "web",
                    }
                },
            )
            rule_uuid = created.json()["uuid"]
            rule = (await client.get(f"/api/firewall/d_nat/getRule/{rule_uuid}")).json()["rule"]
            assert rule["destination"]["port"] == "8080"
            assert rule["protocol"]["tcp"]["selected"] == 1  # this model lower-cases protocols
            rows = (await client.get("/api/firewall/d_nat/searchRule")).json()["rows"]
            automatic = [row for row in rows if row.get("is_automatic")]
            assert [row["uuid"] for row in automatic] == ["lockout_1", "lockout_0"]
            mine = next(row for row in rows if row["uuid"] == rule_uuid)
            assert mine["destination.port"] == "8080"
            toggled = await client.post(f"/api/firewall/d_nat/toggleRule/{rule_uuid}")
            assert toggled.json() == {"result": "Disabled"}
            assert (await state(client))["config"]["dnat_rules"][0]["disabled"] == "1"
    finally:
        await sim.stop()


# --------------------------------------------------------------------------- routes


async def test_routes_crud_validation_and_reconfigure(api: httpx.AsyncClient) -> None:
    invalid = await api.post(
        "/api/routes/routes/addroute", json={"route": {"network": "10.0.0.1", "gateway": "NOPE"}}
    )
    assert invalid.json()["validations"] == {
        "route.network": "please specify a valid network segment or address (IPv4/IPv6) ",
        "route.gateway": "option not in list",
    }
    created = await api.post(
        "/api/routes/routes/addRoute", json={"route": {"network": "10.20.0.0/16", "gateway": "WAN_GW"}}
    )
    route_uuid = created.json()["uuid"]
    route = (await api.get(f"/api/routes/routes/getroute/{route_uuid}")).json()["route"]
    assert route["gateway"]["WAN_GW"] == {"value": "WAN_GW - 203.0.113.1", "selected": 1}
    assert route["disabled"] == "0"
    assert (await state(api))["running"]["routes"] == []
    assert (await api.get("/api/routes/routes/reconfigure")).json() == {"status": "failed"}
    assert (await api.post("/api/routes/routes/reconfigure", json={})).json() == {"status": "ok"}
    assert [r["network"] for r in (await state(api))["running"]["routes"]] == ["10.20.0.0/16"]
    await api.post(f"/api/routes/routes/setroute/{route_uuid}", json={"route": {"network": "10.30.0.0/16"}})
    assert (await state(api))["pending"]["route_deletions"] == ["10.20.0.0/16"]
    toggled = await api.post(f"/api/routes/routes/toggleroute/{route_uuid}")
    assert toggled.json() == {"result": "Disabled"}
    await api.post("/api/routes/routes/reconfigure", json={})
    current = await state(api)
    assert current["running"]["routes"] == []
    assert current["pending"]["route_deletions"] == []


async def test_routes_use_enabled_from_26_7() -> None:
    sim = await _started(firmware_version="26.7")
    try:
        async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as api:
            created = await api.post(
                "/api/routes/routes/addroute", json={"route": {"network": "10.9.0.0/16", "gateway": "LAN_GW"}}
            )
            route_uuid = created.json()["uuid"]
            route = (await api.get(f"/api/routes/routes/getroute/{route_uuid}")).json()["route"]
            assert route["enabled"] == "1"
            assert "disabled" not in route
            toggled = await api.post(f"/api/routes/routes/toggleroute/{route_uuid}/0")
            assert toggled.json() == {"result": "Disabled", "changed": True}
    finally:
        await sim.stop()


# --------------------------------------------------------------------------- health, backup


async def test_health_endpoints_report_the_firmware(api: httpx.AsyncClient) -> None:
    firmware = (await api.get("/api/core/firmware/status")).json()
    assert firmware["product"]["product_version"] == "25.7"
    status = (await api.get("/api/core/system/status")).json()
    assert status["System"] == {"status": "OK"}


async def test_backup_download_and_restore_round_trip(api: httpx.AsyncClient) -> None:
    rule_uuid = await add_rule(api, description="backed up")
    backup = await api.get("/api/core/backup/download/this")
    assert backup.status_code == 200
    assert backup.headers["content-type"].startswith("application/octet-stream")
    assert backup.content.startswith(b'<?xml version="1.0"?>')
    assert SECRET.encode() not in backup.content  # secrets are stored hashed
    await api.post(f"/api/firewall/filter/delRule/{rule_uuid}")
    restored = await api.post("/api/core/backup/restore", files={"conffile": ("config.xml", backup.content)})
    assert restored.json() == {"status": "success"}
    assert [r["uuid"] for r in (await state(api))["config"]["filter_rules"]] == [rule_uuid]
    garbage = await api.post("/api/core/backup/restore", files={"conffile": ("c.xml", b"<nope/>")})
    assert garbage.json()["status"] == "failed"
    # The restored config still carries the API key, so we are still logged in.
    assert (await api.get("/api/firewall/filter/searchRule")).status_code == 200


# --------------------------------------------------------------------------- bootstrap


async def test_factory_bootstrap_change_password_and_create_api_key() -> None:
    sim = await _started(factory_defaults=True)
    try:
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            no_key = await client.get("/api/firewall/filter/searchRule", auth=(KEY, SECRET))
            assert no_key.status_code == 401
            users = (await client.get("/api/auth/user/search", auth=("root", "opnsense"))).json()
            root_uuid = next(row["uuid"] for row in users["rows"] if row["name"] == "root")
            changed = await client.post(
                f"/api/auth/user/set/{root_uuid}",
                json={"user": {"password": "n3w-pass"}},
                auth=("root", "opnsense"),
            )
            assert changed.json() == {"result": "saved"}
            old = await client.get("/api/auth/user/search", auth=("root", "opnsense"))
            assert old.status_code == 401
            created = await client.post("/api/auth/user/add_api_key/root", auth=("root", "n3w-pass"))
            body = created.json()
            assert body["result"] == "ok"
            assert body["hostname"] == "OPNsense.localdomain"
            search = await client.get("/api/firewall/filter/searchRule", auth=(body["key"], body["secret"]))
            assert search.status_code == 200
            dump = (await client.get("/_sim/state")).json()
            assert body["secret"] not in str(dump)
    finally:
        await sim.stop()


# --------------------------------------------------------------------------- os-frr BGP


async def test_bgp_neighbors_are_staged_until_service_reconfigure(api: httpx.AsyncClient) -> None:
    invalid = await api.post("/api/quagga/bgp/addNeighbor", json={"neighbor": {"address": "192.0.2.2"}})
    assert invalid.json()["validations"] == {"neighbor.remoteas": "A value is required."}
    created = await api.post(
        "/api/quagga/bgp/addNeighbor",
        json={"neighbor": {"address": "192.0.2.2", "remoteas": 65002, "description": "transit"}},
    )
    neighbor_uuid = created.json()["uuid"]
    row = (await api.get("/api/quagga/bgp/searchNeighbor")).json()["rows"][0]
    assert (row["address"], row["remoteas"], row["enabled"]) == ("192.0.2.2", "65002", "1")
    before = await state(api)
    assert before["pending"]["bgp"] is True
    assert before["running"]["bgp_neighbors"] == []
    assert (await api.post("/api/quagga/service/reconfigure", json={})).json() == {"status": "ok"}
    after = await state(api)
    assert [n["uuid"] for n in after["running"]["bgp_neighbors"]] == [neighbor_uuid]
    toggled = await api.post(f"/api/quagga/bgp/toggleNeighbor/{neighbor_uuid}/0")
    assert toggled.json() == {"result": "Disabled", "changed": True}
