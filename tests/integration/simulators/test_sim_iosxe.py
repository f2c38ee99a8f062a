"""Faithfulness of the IOS-XE simulator (vendor-apis.md section 6): SSH CLI and RESTCONF."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import httpx
import pytest

from vnf_operator.testing.simulators import IosXeSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

USER = IosXeSimulator.default_credentials.username
PASSWORD = IosXeSimulator.default_credentials.password
NATIVE = "/restconf/data/Cisco-IOS-XE-native:native"
JSON = {"Accept": "application/yang-data+json", "Content-Type": "application/yang-data+json"}


@pytest.fixture
async def sim() -> AsyncIterator[IosXeSimulator]:
    simulator = IosXeSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def rc(sim: IosXeSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(USER, PASSWORD), headers=JSON) as client:
        yield client


async def shell(sim: IosXeSimulator, lines: list[str]) -> str:
    """An interactive session (no PTY, so input is not echoed)."""
    assert sim.ssh_port is not None
    async with asyncssh.connect(
        "127.0.0.1", sim.ssh_port, username=USER, password=PASSWORD, known_hosts=None
    ) as conn:
        process = await conn.create_process(term_type=None)
        process.stdin.write("\n".join([*lines, "end", "exit"]) + "\n")
        process.stdin.write_eof()
        output: str = await process.stdout.read()
        return output


# --------------------------------------------------------------------------- CLI


async def test_prompts_follow_the_configuration_modes(sim: IosXeSimulator) -> None:
    output = await shell(
        sim,
        ["terminal length 0", "configure terminal", "interface Gi2", "exit", "router bgp 65001",
         "address-family ipv4", "exit-address-family", "ip access-list extended X", "end"],
    )  # fmt: skip
    for prompt in (
        "Router#",
        "Router(config)#",
        "Router(config-if)#",
        "Router(config-router)#",
        "Router(config-router-af)#",
        "Router(config-ext-nacl)#",
    ):
        assert prompt in output


async def test_invalid_input_marks_the_offending_word(sim: IosXeSimulator) -> None:
    output = await shell(sim, ["conf t", "ip routx 10.0.0.0 255.0.0.0 10.1.1.1", "ip route 10.0.0.0"])
    # The caret sits under "routx": prompt width plus the word's column in the line.
    caret = " " * len("Router(config)#ip ") + "^\n% Invalid input detected at '^' marker."
    assert caret in output
    assert "% Incomplete command." in output


async def test_configuration_shows_up_in_show_commands(sim: IosXeSimulator) -> None:
    output = await shell(
        sim,
        [
            "conf t",
            "hostname edge1",
            "int gi2",
            "description uplink",
            "ip address 10.0.0.1 255.255.255.0",
            "shutdown",
            "exit",
            "ip route 10.9.0.0 255.255.0.0 10.0.0.254",
            "ip access-list extended WEB",
            "permit tcp any host 10.1.1.1 eq 443",
            "exit",
            "router bgp 65001",
            "neighbor 10.0.0.2 remote-as 65002",
            "neighbor 10.0.0.2 description transit",
            "end",
            "show running-config",
            "show ip interface brief",
            "show ip route static",
            "show ip bgp summary",
        ],
    )
    assert "edge1(config)#" in output
    assert (
        "interface GigabitEthernet2\n description uplink\n ip address 10.0.0.1 255.255.255.0\n shutdown\n"
        in output
    )
    assert "ip route 10.9.0.0 255.255.0.0 10.0.0.254" in output
    assert "ip access-list extended WEB\n 10 permit tcp any host 10.1.1.1 eq 443\n" in output
    assert " neighbor 10.0.0.2 description transit" in output
    assert "GigabitEthernet2       10.0.0.1        YES manual administratively down down" in output
    assert "S        10.9.0.0/16 [1/0] via 10.0.0.254" in output
    assert "10.0.0.2        4        65002" in output


async def test_no_forms_and_cli_errors(sim: IosXeSimulator) -> None:
    output = await shell(
        sim,
        [
            "conf t",
            "ip route 10.9.0.0 255.255.0.0 10.0.0.254",
            "no ip route 10.9.0.0 255.255.0.0 10.0.0.254",
            "no ip route 10.9.0.0 255.255.0.0 10.0.0.254",
            "router bgp 65001",
            "neighbor 10.0.0.9 description orphan",
            "exit",
            "router bgp 65002",
            "end",
        ],
    )
    assert "%No matching route to delete" in output
    assert "% Specify remote-as or peer-group commands first" in output
    assert "% BGP is already running; AS is 65001" in output
    assert sim.running.routes == {}


async def test_exec_channel_exit_status(sim: IosXeSimulator) -> None:
    assert sim.ssh_port is not None
    async with asyncssh.connect(
        "127.0.0.1", sim.ssh_port, username=USER, password=PASSWORD, known_hosts=None
    ) as conn:
        ok = await conn.run("show ip interface brief")
        bad = await conn.run("show bogus")
    assert ok.exit_status == 0
    assert "GigabitEthernet1" in str(ok.stdout)
    assert bad.exit_status == 1


async def test_write_memory_survives_restart_unsaved_does_not(sim: IosXeSimulator) -> None:
    await shell(sim, ["conf t", "hostname saved", "end", "write memory"])
    await shell(sim, ["conf t", "hostname unsaved", "end"])
    assert sim.running.hostname == "unsaved"
    await sim.restart()
    assert sim.running.hostname == "saved"


# --------------------------------------------------------------------------- RESTCONF


async def test_restconf_auth_and_unknown_paths(sim: IosXeSimulator, rc: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, headers=JSON) as anonymous:
        denied = await anonymous.get(f"{NATIVE}/hostname")
        assert denied.status_code == 401
        assert denied.json()["ietf-restconf:errors"]["error"][0]["error-tag"] == "access-denied"
    unknown = await rc.get(f"{NATIVE}/no/such/thing")
    assert unknown.status_code == 404
    error = unknown.json()["ietf-restconf:errors"]["error"][0]
    assert error["error-message"] == "uri keypath not found"
    assert error["error-type"] == "application"


async def test_restconf_interface_shapes_and_put_replaces(rc: httpx.AsyncClient) -> None:
    body = {
        "Cisco-IOS-XE-native:GigabitEthernet": {
            "name": "2",
            "description": "to core",
            "ip": {"address": {"primary": {"address": "10.0.0.1", "mask": "255.255.255.0"}}},
            "shutdown": [None],
        }
    }
    assert (await rc.put(f"{NATIVE}/interface/GigabitEthernet=2", json=body)).status_code == 204
    got = (await rc.get(f"{NATIVE}/interface/GigabitEthernet=2")).json()
    entry = got["Cisco-IOS-XE-native:GigabitEthernet"][0]
    assert entry["shutdown"] == [None]
    assert entry["ip"]["address"]["primary"]["mask"] == "255.255.255.0"
    replaced = {"Cisco-IOS-XE-native:GigabitEthernet": {"name": "2", "description": "only this"}}
    await rc.put(f"{NATIVE}/interface/GigabitEthernet=2", json=replaced)
    entry = (await rc.get(f"{NATIVE}/interface/GigabitEthernet=2")).json()[
        "Cisco-IOS-XE-native:GigabitEthernet"
    ][0]
    assert entry == {"name": "2", "description": "only this", "ip": {"no-address": {"address": False}}}
    patched = {"Cisco-IOS-XE-native:GigabitEthernet": {"name": "2", "shutdown": [None]}}
    await rc.patch(f"{NATIVE}/interface/GigabitEthernet=2", json=patched)
    entry = (await rc.get(f"{NATIVE}/interface/GigabitEthernet=2")).json()[
        "Cisco-IOS-XE-native:GigabitEthernet"
    ][0]
    assert entry["description"] == "only this"
    assert entry["shutdown"] == [None]


async def test_restconf_post_creates_201_and_409_when_present(rc: httpx.AsyncClient) -> None:
    loopback = {"Cisco-IOS-XE-native:Loopback": {"name": 0, "description": "router-id"}}
    created = await rc.post(f"{NATIVE}/interface", json=loopback)
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/interface/Loopback=0")
    again = await rc.post(f"{NATIVE}/interface", json=loopback)
    assert again.status_code == 409
    assert again.json()["ietf-restconf:errors"]["error"][0]["error-tag"] == "data-exists"
    assert (await rc.delete(f"{NATIVE}/interface/Loopback=0")).status_code == 204
    assert (await rc.delete(f"{NATIVE}/interface/Loopback=0")).status_code == 404
    assert (await rc.delete(f"{NATIVE}/interface/GigabitEthernet=1")).status_code == 400


async def test_restconf_static_routes_and_percent_encoded_keys(
    sim: IosXeSimulator, rc: httpx.AsyncClient
) -> None:
    assert (await rc.get(f"{NATIVE}/ip/route")).status_code == 404
    body = {
        "Cisco-IOS-XE-native:route": {
            "ip-route-interface-forwarding-list": [
                {"prefix": "10.0.0.0", "mask": "255.0.0.0", "fwd-list": [{"fwd": "192.168.122.1"}]}
            ]
        }
    }
    assert (await rc.patch(f"{NATIVE}/ip/route", json=body)).status_code == 204
    entry_url = f"{NATIVE}/ip/route/ip-route-interface-forwarding-list=10.0.0.0,255.0.0.0"
    entry = (await rc.get(entry_url)).json()
    assert entry["Cisco-IOS-XE-native:ip-route-interface-forwarding-list"][0]["fwd-list"] == [
        {"fwd": "192.168.122.1"}
    ]
    bad = {
        "Cisco-IOS-XE-native:route": {
            "ip-route-interface-forwarding-list": [
                {"prefix": "10.0.0.1", "mask": "255.0.0.0", "fwd-list": [{"fwd": "1.1.1.1"}]}
            ]
        }
    }
    refused = await rc.patch(f"{NATIVE}/ip/route", json=bad)
    assert refused.status_code == 400
    assert list(sim.running.routes) == [("10.0.0.0", "255.0.0.0")]  # the refused edit changed nothing
    assert (await rc.delete(entry_url)).status_code == 204
    encoded = await rc.get(f"{NATIVE}/interface/GigabitEthernet=1%2F0%2F1")
    assert encoded.status_code == 404  # decoded to GigabitEthernet1/0/1, which this box lacks


async def test_restconf_acl_and_bgp_shapes(sim: IosXeSimulator, rc: httpx.AsyncClient) -> None:
    acl = {
        "Cisco-IOS-XE-acl:extended": [
            {
                "name": "WEB",
                "access-list-seq-rule": [
                    {
                        "sequence": "10",
                        "ace-rule": {
                            "action": "permit",
                            "protocol": "tcp",
                            "any": [None],
                            "dst-host": "10.1.1.1",
                            "dst-eq": 443,
                        },
                    }
                ],
            }
        ]
    }
    assert (await rc.post(f"{NATIVE}/ip/access-list", json=acl)).status_code == 201
    assert "10 permit tcp any host 10.1.1.1 eq 443" in sim.running.access_lists()
    bgp = {"Cisco-IOS-XE-bgp:bgp": [{"id": 65001, "neighbor": [{"id": "10.0.0.2", "remote-as": 65002}]}]}
    assert (await rc.put(f"{NATIVE}/router/Cisco-IOS-XE-bgp:bgp=65001", json=bgp)).status_code == 201
    more = {"Cisco-IOS-XE-bgp:bgp": [{"id": 65001, "neighbor": [{"id": "10.0.0.3", "remote-as": 65003}]}]}
    await rc.patch(f"{NATIVE}/router/Cisco-IOS-XE-bgp:bgp=65001", json=more)
    got: dict[str, Any] = (await rc.get(f"{NATIVE}/router/Cisco-IOS-XE-bgp:bgp=65001")).json()
    assert [n["id"] for n in got["Cisco-IOS-XE-bgp:bgp"][0]["neighbor"]] == ["10.0.0.2", "10.0.0.3"]
    await rc.put(f"{NATIVE}/router/Cisco-IOS-XE-bgp:bgp=65001", json=more)  # PUT drops the others
    got = (await rc.get(f"{NATIVE}/router/Cisco-IOS-XE-bgp:bgp=65001")).json()
    assert [n["id"] for n in got["Cisco-IOS-XE-bgp:bgp"][0]["neighbor"]] == ["10.0.0.3"]
    other_as = await rc.get(f"{NATIVE}/router/Cisco-IOS-XE-bgp:bgp=65009")
    assert other_as.status_code == 404


async def test_restconf_and_cli_share_one_running_config(sim: IosXeSimulator, rc: httpx.AsyncClient) -> None:
    await rc.put(f"{NATIVE}/hostname", json={"Cisco-IOS-XE-native:hostname": "shared"})
    output = await shell(sim, ["show running-config"])
    assert "hostname shared" in output
    await shell(sim, ["conf t", "ip route 172.16.0.0 255.240.0.0 192.168.122.1", "end"])
    routes = (await rc.get(f"{NATIVE}/ip/route")).json()["Cisco-IOS-XE-native:route"]
    assert routes["ip-route-interface-forwarding-list"][0]["prefix"] == "172.16.0.0"


async def test_save_config_rpc_and_restart(sim: IosXeSimulator, rc: httpx.AsyncClient) -> None:
    await rc.put(f"{NATIVE}/hostname", json={"Cisco-IOS-XE-native:hostname": "persisted"})
    saved = await rc.post("/restconf/operations/cisco-ia:save-config", json={})
    assert saved.json() == {"cisco-ia:output": {"result": "Save running config is successful"}}
    await rc.put(f"{NATIVE}/hostname", json={"Cisco-IOS-XE-native:hostname": "lost"})
    await sim.restart()
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(USER, PASSWORD), headers=JSON) as client:
        host = (await client.get(f"{NATIVE}/hostname")).json()
    assert host == {"Cisco-IOS-XE-native:hostname": "persisted"}


async def test_xml_without_a_json_accept_header(sim: IosXeSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(USER, PASSWORD)) as client:
        response = await client.get(f"{NATIVE}/hostname")
    assert response.headers["content-type"].startswith("application/yang-data+xml")
    assert response.text == '<hostname xmlns="http://cisco.com/ns/yang/Cisco-IOS-XE-native">Router</hostname>'


async def test_output_filters_distance_default_interface_and_port_names(sim: IosXeSimulator) -> None:
    output = await shell(
        sim,
        [
            "conf t",
            "ip route 10.20.0.0 255.255.0.0 192.168.122.1 5",
            "interface Gi3",
            'description "to be reset"',
            "exit",
            "default interface Gi3",
            "ip access-list extended WEB",
            "10 permit tcp any any eq 80",
            "20 permit udp any any eq ntp",
            "30 permit tcp any any eq nosuchport",
            "router bgp 65001",
            "neighbor 10.0.0.2 remote-as 65002",
            "end",
            "show running-config | include ^ip route ",
            "show running-config | section ^ip access-list extended",
            "show running-config | section ^interface GigabitEthernet3",
            "clear ip bgp 10.0.0.2 soft",
            "show ip route static",
        ],
    )
    assert "Interface GigabitEthernet3 set to default configuration" in output
    assert "ip route 10.20.0.0 255.255.0.0 192.168.122.1 5\n" in output
    assert (
        "ip access-list extended WEB\n 10 permit tcp any any eq www\n 20 permit udp any any eq ntp\n"
        in output
    )
    assert "30 permit" not in output  # the unknown port name was refused
    assert "interface GigabitEthernet3\n no ip address\n negotiation auto\n" in output
    assert "to be reset" not in output.split("set to default configuration", 1)[1]
    assert "[5/0] via 192.168.122.1" in output
    assert "% No such neighbor" not in output


async def test_pty_session_prompts_start_on_a_new_line(sim: IosXeSimulator) -> None:
    assert sim.ssh_port is not None
    async with asyncssh.connect(
        "127.0.0.1", sim.ssh_port, username=USER, password=PASSWORD, known_hosts=None
    ) as conn:
        process = await conn.create_process(term_type="vt100")
        first = await process.stdout.readuntil("#")
        process.stdin.write("configure terminal\n")
        second = await process.stdout.readuntil("(config)#")
        process.stdin.write("end\nexit\n")
    prompt = re.compile(r"[\r\n][\w.@()/:-]+(\(config[^)]*\))?[#>] ?$")
    assert prompt.search(first)
    assert prompt.search(second)


async def test_operational_interfaces_model(rc: httpx.AsyncClient) -> None:
    every = await rc.get("/restconf/data/Cisco-IOS-XE-interfaces-oper:interfaces")
    rows = every.json()["Cisco-IOS-XE-interfaces-oper:interfaces"]["interface"]
    first = next(row for row in rows if row["name"] == "GigabitEthernet1")
    assert first["ipv4"] == "192.168.122.10"
    assert first["admin-status"] == "if-state-up"
    assert "in-octets" in first["statistics"]
    one = await rc.get("/restconf/data/Cisco-IOS-XE-interfaces-oper:interfaces/interface=GigabitEthernet2")
    assert one.json()["Cisco-IOS-XE-interfaces-oper:interface"][0]["name"] == "GigabitEthernet2"
    missing = await rc.get("/restconf/data/Cisco-IOS-XE-interfaces-oper:interfaces/interface=Gi9")
    assert missing.status_code == 404
