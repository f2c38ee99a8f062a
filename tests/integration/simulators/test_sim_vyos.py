"""Faithfulness of the VyOS simulator (vendor-apis.md section 4): HTTP API and vbash CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import httpx
import pytest

from vnf_operator.testing.simulators import SimulatorConfig, VyosSimulator

pytestmark = pytest.mark.integration

KEY = VyosSimulator.default_credentials.api_key
USER = VyosSimulator.default_credentials.username
PASSWORD = VyosSimulator.default_credentials.password


@pytest.fixture
async def sim() -> AsyncIterator[VyosSimulator]:
    simulator = VyosSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.stop()


async def call(sim: VyosSimulator, endpoint: str, data: Any, key: str = KEY) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        return await client.post(endpoint, data={"data": json.dumps(data), "key": key})


async def show(sim: VyosSimulator, path: list[str]) -> Any:
    response = await call(sim, "/retrieve", {"op": "showConfig", "path": path})
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def cli(sim: VyosSimulator, script: str, password: str = PASSWORD) -> asyncssh.SSHCompletedProcess:
    assert sim.ssh_port is not None
    async with asyncssh.connect(
        "127.0.0.1", sim.ssh_port, username=USER, password=password, known_hosts=None
    ) as conn:
        return await conn.run(script)


RULE = ["firewall", "ipv4", "name", "WAN-IN", "rule", "20"]


async def test_wrong_or_missing_key_is_401(sim: VyosSimulator) -> None:
    response = await call(sim, "/retrieve", {"op": "showConfig", "path": []}, key="nope")
    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "Valid API key is required", "data": None}
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        bare = await client.post("/retrieve", data={"data": json.dumps({"op": "showConfig", "path": []})})
    assert bare.status_code == 401


async def test_configure_list_commits_and_show_config_uses_the_nested_shape(sim: VyosSimulator) -> None:
    response = await call(
        sim,
        "/configure",
        [
            {"op": "set", "path": [*RULE, "action", "accept"]},
            {"op": "set", "path": [*RULE, "destination", "port"], "value": "22"},
            {"op": "set", "path": [*RULE, "protocol", "tcp"]},
            {"op": "set", "path": [*RULE, "log"]},
            {"op": "set", "path": ["interfaces", "ethernet", "eth1", "address", "192.0.2.1/24"]},
            {"op": "set", "path": ["interfaces", "ethernet", "eth1", "address", "198.51.100.1/24"]},
        ],
    )
    assert response.json() == {"success": True, "data": None, "error": None}
    rule = await show(sim, RULE)
    assert rule == {"action": "accept", "destination": {"port": "22"}, "log": {}, "protocol": "tcp"}
    addresses = await call(
        sim, "/retrieve", {"op": "returnValues", "path": ["interfaces", "ethernet", "eth1", "address"]}
    )
    assert addresses.json()["data"] == ["192.0.2.1/24", "198.51.100.1/24"]
    value = await call(sim, "/retrieve", {"op": "returnValue", "path": [*RULE, "action"]})
    assert value.json()["data"] == "accept"
    exists = await call(sim, "/retrieve", {"op": "exists", "path": [*RULE, "log"]})
    assert exists.json()["data"] is True
    missing = await call(sim, "/retrieve", {"op": "exists", "path": ["nat"]})
    assert missing.json()["data"] is False
    empty = await call(sim, "/retrieve", {"op": "showConfig", "path": ["nat"]})
    assert empty.status_code == 400
    assert empty.json()["success"] is False


async def test_a_failing_command_discards_the_whole_request(sim: VyosSimulator) -> None:
    response = await call(
        sim,
        "/configure",
        [
            {"op": "set", "path": ["system", "host-name", "edge1"]},
            {"op": "set", "path": [*RULE, "action", "allow"]},
        ],
    )
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert "Value validation failed" in body["error"]
    assert (await show(sim, ["system", "host-name"])) == "vyos"
    bad_path = await call(sim, "/configure", {"op": "set", "path": ["firewall", "colour", "red"]})
    assert bad_path.json()["error"] == "Configuration path: [firewall colour] is not valid\nSet failed"


async def test_commit_verification_errors(sim: VyosSimulator) -> None:
    response = await call(
        sim,
        "/configure",
        {"op": "set", "path": ["protocols", "bgp", "neighbor", "192.0.2.2", "description", "x"]},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "BGP system-as number must be defined!" in error
    assert 'Neighbor "192.0.2.2" remote-as must be set!' in error
    assert error.endswith("Commit failed")
    nat = await call(
        sim,
        "/configure",
        {"op": "set", "path": ["nat", "source", "rule", "100", "source", "address", "10.0.0.0/8"]},
    )
    assert "translation requires address and/or port" in nat.json()["error"]
    ok = await call(
        sim,
        "/configure",
        [
            {"op": "set", "path": ["protocols", "bgp", "system-as", "65001"]},
            {"op": "set", "path": ["protocols", "bgp", "neighbor", "192.0.2.2", "remote-as", "65002"]},
            {
                "op": "set",
                "path": ["protocols", "bgp", "neighbor", "192.0.2.2", "address-family", "ipv4-unicast"],
            },
        ],
    )
    assert ok.json()["success"] is True


async def test_delete_prunes_empty_parents_but_keeps_tag_entries(sim: VyosSimulator) -> None:
    await call(
        sim,
        "/configure",
        {"op": "set", "path": ["protocols", "static", "route", "10.0.0.0/8", "next-hop", "192.0.2.254"]},
    )
    await call(sim, "/configure", {"op": "delete", "path": ["protocols", "static", "route", "10.0.0.0/8"]})
    assert (await call(sim, "/retrieve", {"op": "exists", "path": ["protocols"]})).json()["data"] is False
    await call(sim, "/configure", {"op": "delete", "path": ["interfaces", "ethernet", "eth1", "hw-id"]})
    assert await show(sim, ["interfaces", "ethernet", "eth1"]) == {}


async def test_committed_but_unsaved_changes_are_lost_on_restart(sim: VyosSimulator) -> None:
    await call(sim, "/configure", {"op": "set", "path": ["system", "host-name", "edge1"]})
    await sim.restart()
    assert await show(sim, ["system", "host-name"]) == "vyos"
    await call(sim, "/configure", {"op": "set", "path": ["system", "host-name", "edge2"]})
    saved = await call(sim, "/config-file", {"op": "save"})
    assert saved.json()["data"] == "Saving configuration to '/config/config.boot'...\nDone\n"
    await sim.restart()
    assert await show(sim, ["system", "host-name"]) == "edge2"


async def test_config_file_load_restores_a_saved_file(sim: VyosSimulator) -> None:
    await call(sim, "/config-file", {"op": "save", "file": "/config/known-good"})
    await call(sim, "/configure", {"op": "set", "path": ["system", "host-name", "broken"]})
    loaded = await call(sim, "/config-file", {"op": "load", "file": "/config/known-good"})
    assert loaded.json()["success"] is True
    assert await show(sim, ["system", "host-name"]) == "vyos"
    missing = await call(sim, "/config-file", {"op": "load", "file": "/config/none"})
    assert missing.status_code == 400


async def test_commit_confirm_via_api_confirmed_and_timed_out() -> None:
    sim = VyosSimulator(SimulatorConfig(time_scale=0.001))  # a minute becomes 60 ms
    await sim.start()
    try:
        confirmed = await call(
            sim, "/configure", {"op": "set", "path": ["system", "host-name", "kept"], "confirm_time": 10}
        )
        assert confirmed.json()["success"] is True
        assert (await call(sim, "/configure", {"op": "confirm"})).json()["success"] is True
        await call(
            sim, "/configure", {"op": "set", "path": ["system", "host-name", "reverted"], "confirm_time": 1}
        )
        for _ in range(500):
            if sim.events:
                break
            await asyncio.sleep(0.02)
        assert sim.events == [{"event": "commit-confirm timeout", "action": "reverted"}]
        assert await show(sim, ["system", "host-name"]) == "kept"
        nothing = await call(sim, "/configure", {"op": "confirm"})
        assert nothing.status_code == 400
    finally:
        await sim.stop()


async def test_json_body_with_the_key_beside_the_command(sim: VyosSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        response = await client.post("/retrieve", json={"key": KEY, "op": "showConfig", "path": ["system"]})
    assert response.json()["data"]["host-name"] == "vyos"


async def test_info_endpoint_exists_from_1_5(sim: VyosSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        assert (await client.get("/info")).status_code in (404, 405)
    newer = VyosSimulator(SimulatorConfig(firmware_version="1.5.0"))
    await newer.start()
    try:
        async with httpx.AsyncClient(base_url=newer.base_url) as client:
            info = (await client.get("/info")).json()
        assert info["data"]["version"] == "1.5.0"
    finally:
        await newer.stop()


# --------------------------------------------------------------------------- CLI


async def test_cli_configure_commit_save_and_show_commands(sim: VyosSimulator) -> None:
    result = await cli(
        sim,
        "configure\n"
        "set protocols static route 10.0.0.0/8 next-hop 192.168.1.1 distance 10\n"
        "set nat destination rule 10 inbound-interface name eth0\n"
        "set nat destination rule 10 destination port 80\n"
        "set nat destination rule 10 protocol tcp\n"
        "set nat destination rule 10 translation address 192.168.1.100\n"
        "commit\n"
        "save\n"
        "exit\n"
        "show configuration commands\n",
    )
    assert result.exit_status == 0, result.stdout
    output = str(result.stdout)
    assert "set protocols static route 10.0.0.0/8 next-hop 192.168.1.1 distance '10'" in output
    assert "set nat destination rule 10 translation address '192.168.1.100'" in output
    assert "Saving configuration to '/config/config.boot'..." in output
    assert await show(sim, ["protocols", "static", "route", "10.0.0.0/8", "next-hop", "192.168.1.1"]) == {
        "distance": "10"
    }
    await sim.restart()
    assert "10.0.0.0/8" in await show(sim, ["protocols", "static", "route"])


async def test_cli_refuses_to_exit_with_uncommitted_changes(sim: VyosSimulator) -> None:
    result = await cli(sim, "configure\nset system host-name pending\nexit\ncompare\nexit discard\n")
    output = str(result.stdout)
    assert "Cannot exit: configuration modified." in output
    assert "+ set system host-name 'pending'" in output
    assert result.exit_status == 1
    assert await show(sim, ["system", "host-name"]) == "vyos"


async def test_cli_errors_and_commit_failures(sim: VyosSimulator) -> None:
    result = await cli(
        sim,
        "configure\nset firewall ipv4 forward filter rule 10 action jump\ncommit\n"
        "delete system ntp\nset system bogus 1\n",
    )
    output = str(result.stdout)
    assert "Action set to jump, but no jump-target specified" in output
    assert "Commit failed" in output
    assert "Nothing to delete" in output
    assert "Configuration path: [system bogus] is not valid" in output
    assert (await call(sim, "/retrieve", {"op": "exists", "path": ["firewall"]})).json()["data"] is False


async def test_cli_commit_confirm_and_confirm(sim: VyosSimulator) -> None:
    result = await cli(sim, "configure\nset system host-name confirmed\ncommit-confirm 5\nconfirm\nexit\n")
    assert "automatically reload the previous configuration in 5 minutes" in str(result.stdout)
    assert "Reload timer stopped" in str(result.stdout)
    assert sim.dump_state()["commit_confirm_pending"] is False
    assert await show(sim, ["system", "host-name"]) == "confirmed"


async def test_factory_bootstrap_over_ssh_then_api() -> None:
    sim = VyosSimulator(SimulatorConfig(factory_defaults=True))
    await sim.start()
    try:
        denied = await call(sim, "/retrieve", {"op": "showConfig", "path": []})
        assert denied.status_code == 401
        with pytest.raises(asyncssh.PermissionDenied):
            await cli(sim, "show version")
        result = await cli(
            sim,
            "configure\n"
            "set service https api keys id operator key 'fresh-key'\n"
            "set system login user vyos authentication plaintext-password 'n3w pass'\n"
            "commit\nsave\nexit\n",
            password="vyos",
        )
        assert result.exit_status == 0, result.stdout
        allowed = await call(
            sim, "/retrieve", {"op": "showConfig", "path": ["system", "login"]}, key="fresh-key"
        )
        auth = allowed.json()["data"]["user"]["vyos"]["authentication"]
        assert "plaintext-password" not in auth  # encrypted during commit
        assert "n3w pass" not in json.dumps(sim.dump_state())
        assert "fresh-key" not in json.dumps(sim.dump_state())
        again = await cli(sim, "show version", password="n3w pass")
        assert "VyOS 1.4.3" in str(again.stdout)
    finally:
        await sim.stop()
