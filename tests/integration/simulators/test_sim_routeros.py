"""Faithfulness of the RouterOS v7 simulator (vendor-apis.md section 3): REST and SSH console."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import httpx
import pytest

from vnf_operator.testing.simulators import RouterOsSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

USER = RouterOsSimulator.default_credentials.username
PASSWORD = RouterOsSimulator.default_credentials.password


@pytest.fixture
async def sim() -> AsyncIterator[RouterOsSimulator]:
    simulator = RouterOsSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def rest(sim: RouterOsSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url + "/rest", auth=(USER, PASSWORD)) as client:
        yield client


async def ssh_run(sim: RouterOsSimulator, *commands: str) -> list[asyncssh.SSHCompletedProcess]:
    assert sim.ssh_port is not None
    async with asyncssh.connect(
        "127.0.0.1", sim.ssh_port, username=USER, password=PASSWORD, known_hosts=None
    ) as conn:
        return [await conn.run(command) for command in commands]


async def put(rest: httpx.AsyncClient, path: str, **body: Any) -> dict[str, str]:
    response = await rest.put(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, str] = response.json()
    return result


async def test_bad_credentials_get_401(sim: RouterOsSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        response = await client.get("/rest/ip/firewall/filter", auth=(USER, "wrong"))
        assert response.status_code == 401
        assert response.json() == {"error": 401, "message": "Unauthorized"}
        assert (await client.get("/rest/ip/firewall/filter")).status_code == 401


async def test_put_creates_with_hex_id_and_every_value_is_a_string(rest: httpx.AsyncClient) -> None:
    first = await put(
        rest, "/ip/firewall/filter", chain="input", action="accept", protocol="tcp", **{"dst-port": 22}
    )
    second = await put(rest, "/ip/firewall/filter", chain="forward", action="drop", log=True)
    assert first[".id"] == "*1"
    assert second[".id"] == "*2"
    assert first["dst-port"] == "22"
    assert second["log"] == "true"
    assert first["disabled"] == "false"
    assert first["bytes"] == "0"
    assert all(isinstance(value, str) for value in first.values())
    many = [(await rest.put("/ip/firewall/filter", json={"chain": "x"})).json()[".id"] for _ in range(9)]
    assert many[-1] == "*B"


async def test_patch_returns_the_full_object_and_delete_an_empty_body(rest: httpx.AsyncClient) -> None:
    rule = await put(rest, "/ip/firewall/filter", chain="forward", action="drop", comment="old")
    patched = await rest.patch(
        f"/ip/firewall/filter/{rule['.id']}", json={"comment": "new", "disabled": "yes"}
    )
    assert patched.status_code == 200
    assert patched.json()["comment"] == "new"
    assert patched.json()["disabled"] == "true"
    assert patched.json()["chain"] == "forward"
    deleted = await rest.delete(f"/ip/firewall/filter/{rule['.id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    again = await rest.delete(f"/ip/firewall/filter/{rule['.id']}")
    assert again.status_code == 404
    assert again.json() == {"error": 404, "message": "Not Found"}
    assert (await rest.get(f"/ip/firewall/filter/{rule['.id']}")).status_code == 404


async def test_ids_stay_stable_after_deletes(rest: httpx.AsyncClient) -> None:
    ids = [(await put(rest, "/ip/firewall/filter", chain="input"))[".id"] for _ in range(3)]
    await rest.delete(f"/ip/firewall/filter/{ids[0]}")
    listed = [item[".id"] for item in (await rest.get("/ip/firewall/filter")).json()]
    assert listed == ids[1:]
    newest = await put(rest, "/ip/firewall/filter", chain="input")
    assert newest[".id"] == "*4"  # never reused


async def test_errors_use_the_routeros_shape(rest: httpx.AsyncClient) -> None:
    bad_value = await rest.put("/ip/firewall/filter", json={"chain": "input", "action": "allow"})
    assert bad_value.status_code == 400
    assert bad_value.json() == {
        "error": 400,
        "message": "Bad Request",
        "detail": "input does not match any value of action",
    }
    unknown = await rest.put("/ip/firewall/filter", json={"chain": "input", "colour": "red"})
    assert unknown.json()["detail"] == "unknown parameter colour"
    missing = await rest.put("/ip/firewall/filter", json={"action": "drop"})
    assert missing.status_code == 400
    assert "chain" in missing.json()["detail"]
    ports = await rest.put("/ip/firewall/filter", json={"chain": "input", "dst-port": "80"})
    assert "dst-port" in ports.json()["detail"]
    command = await rest.post("/ip/firewall/filter/explode", json={})
    assert command.status_code == 406
    assert command.json()["detail"] == "no such command or directory (explode)"
    assert (await rest.get("/no/such/menu")).status_code == 400
    assert (await rest.get("/ip/firewall/filter")).json() == []


async def test_get_filters_by_field_and_proplist(rest: httpx.AsyncClient) -> None:
    await put(rest, "/ip/firewall/filter", chain="input", action="accept")
    await put(rest, "/ip/firewall/filter", chain="forward", action="drop")
    forward = (await rest.get("/ip/firewall/filter", params={"chain": "forward"})).json()
    assert [item["action"] for item in forward] == ["drop"]
    slim = (await rest.get("/ip/firewall/filter", params={".proplist": ".id,chain"})).json()
    assert slim == [{".id": "*1", "chain": "input"}, {".id": "*2", "chain": "forward"}]
    printed = await rest.post(
        "/ip/firewall/filter/print",
        json={".proplist": ["chain"], ".query": ["chain=input", "chain=forward", "#|"]},
    )
    assert printed.json() == [{"chain": "input"}, {"chain": "forward"}]


async def test_place_before_and_move(rest: httpx.AsyncClient) -> None:
    a = await put(rest, "/ip/firewall/filter", chain="input", comment="a")
    b = await put(rest, "/ip/firewall/filter", chain="input", comment="b")
    c = await put(rest, "/ip/firewall/filter", chain="input", comment="c", **{"place-before": a[".id"]})

    async def order() -> list[str]:
        return [item["comment"] for item in (await rest.get("/ip/firewall/filter")).json()]

    assert await order() == ["c", "a", "b"]
    moved = await rest.post("/ip/firewall/filter/move", json={".id": b[".id"], "destination": c[".id"]})
    assert moved.status_code == 200
    assert await order() == ["b", "c", "a"]
    assert [c[".id"], a[".id"]] == [
        item[".id"] for item in (await rest.get("/ip/firewall/filter")).json()[1:]
    ]


async def test_nat_routes_bgp_and_interfaces(rest: httpx.AsyncClient) -> None:
    nat = await put(
        rest,
        "/ip/firewall/nat",
        chain="dstnat",
        action="dst-nat",
        protocol="tcp",
        **{"dst-port": "80", "in-interface": "ether1", "to-addresses": "192.168.88.10", "to-ports": "8080"},
    )
    assert nat["to-ports"] == "8080"
    bad_if = await rest.put(
        "/ip/firewall/nat", json={"chain": "srcnat", "action": "masquerade", "out-interface": "eth9"}
    )
    assert bad_if.json()["detail"] == "input does not match any value of out-interface"
    route = await put(rest, "/ip/route", **{"dst-address": "10.0.0.1/8", "gateway": "192.168.1.1"})
    assert route[".id"].startswith("*8000")
    assert route["dst-address"] == "10.0.0.0/8"
    assert route["distance"] == "1"
    assert route["static"] == "true"
    peer = await put(
        rest,
        "/routing/bgp/connection",
        name="p1",
        **{"as": 65001, "remote.address": "192.0.2.2", "remote.as": 65002, "local.role": "ebgp"},
    )
    assert peer["remote.as"] == "65002"
    duplicate = await rest.put(
        "/routing/bgp/connection",
        json={"name": "p1", "as": 65001, "remote.address": "192.0.2.3", "local.role": "ebgp"},
    )
    assert duplicate.status_code == 400
    by_name = await rest.get("/interface/ether1")
    assert by_name.json()["type"] == "ether"
    renamed = await rest.patch("/interface/ether2", json={"comment": "uplink", "mtu": 9000})
    assert renamed.json()["mtu"] == "9000"
    assert (await rest.delete("/interface/ether1")).status_code == 400
    address = await put(rest, "/ip/address", address="192.168.88.1/24", interface="ether2")
    assert address["network"] == "192.168.88.0"
    again = await rest.put("/ip/address", json={"address": "192.168.88.1/24", "interface": "ether2"})
    assert again.json()["detail"] == "failure: already have such address"


async def test_health_menus(rest: httpx.AsyncClient) -> None:
    resource = (await rest.get("/system/resource")).json()
    assert resource["version"] == "7.16 (stable)"
    assert (await rest.get("/system/identity")).json() == {"name": "MikroTik"}


async def test_changes_are_live_and_survive_restart(sim: RouterOsSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url + "/rest", auth=(USER, PASSWORD)) as client:
        await put(client, "/ip/firewall/filter", chain="input", comment="kept")
    await sim.restart()
    async with httpx.AsyncClient(base_url=sim.base_url + "/rest", auth=(USER, PASSWORD)) as client:
        items = (await client.get("/ip/firewall/filter")).json()
        assert [item["comment"] for item in items] == ["kept"]


# --------------------------------------------------------------------------- SSH console


async def test_console_add_print_set_remove_share_state_with_rest(
    sim: RouterOsSimulator, rest: httpx.AsyncClient
) -> None:
    add, printed, terse = await ssh_run(
        sim,
        '/ip firewall filter add chain=forward action=drop src-address=10.0.0.0/8 comment="from ssh"',
        "/ip firewall filter print",
        "/ip firewall filter print terse show-ids",
    )
    assert add.exit_status == 0
    assert add.stdout == ""
    assert ";;; from ssh" in str(printed.stdout)
    assert "chain=forward action=drop src-address=10.0.0.0/8" in str(printed.stdout)
    assert str(terse.stdout).startswith("*1 ")
    assert 'comment="from ssh"' in str(terse.stdout)
    via_rest = (await rest.get("/ip/firewall/filter")).json()
    assert via_rest[0]["comment"] == "from ssh"
    await put(rest, "/ip/firewall/filter", chain="input", comment="from rest")
    disabled, removed, final = await ssh_run(
        sim,
        "/ip firewall filter set *2 disabled=yes",
        '/ip firewall filter remove [find comment="from ssh"]',
        "/ip firewall filter print terse",
    )
    assert disabled.exit_status == removed.exit_status == 0
    assert str(final.stdout).startswith(" 0 X ")
    assert "from ssh" not in str(final.stdout)


async def test_console_errors(sim: RouterOsSimulator) -> None:
    bad_value, bad_command, bad_arg, missing = await ssh_run(
        sim,
        "/ip firewall filter add chain=input action=bogus",
        "/ip firewall filter frobnicate",
        "/ip firewall filter add chain=input colour=red",
        "/ip firewall filter remove 7",
    )
    assert bad_value.exit_status == 1
    assert str(bad_value.stdout).strip() == "input does not match any value of action"
    assert str(bad_command.stdout).startswith("bad command name frobnicate")
    assert str(bad_arg.stdout).startswith("expected end of command")
    assert str(missing.stdout).startswith("no such item")


async def test_interactive_console_keeps_menu_context_and_print_numbers(sim: RouterOsSimulator) -> None:
    assert sim.ssh_port is not None
    async with asyncssh.connect(
        "127.0.0.1", sim.ssh_port, username=f"{USER}+ct80w", password=PASSWORD, known_hosts=None
    ) as conn:
        process = await conn.create_process(term_type=None)
        commands = [
            "/ip firewall filter",
            "add chain=input comment=first",
            "add chain=input comment=second",
            "print",
            "move 1 destination=0",
            "print terse",
            "/quit",
        ]
        process.stdin.write("\n".join(commands) + "\n")
        output = await process.stdout.read()
    assert "[admin@MikroTik] /ip firewall filter> " in output
    # Input is not echoed without a PTY; only the terse print shows "comment=...".
    assert ";;; first" in output
    assert output.index("comment=second") < output.index("comment=first")


async def test_export_lists_non_default_settings(sim: RouterOsSimulator, rest: httpx.AsyncClient) -> None:
    await put(rest, "/ip/route", **{"dst-address": "10.5.0.0/16", "gateway": "192.168.1.1", "distance": 5})
    (export,) = await ssh_run(sim, "/export")
    text = str(export.stdout)
    assert "/ip route\nadd distance=5 dst-address=10.5.0.0/16 gateway=192.168.1.1\n" in text
    assert "ether1" not in text  # untouched interfaces are not exported
