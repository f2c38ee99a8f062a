"""Faithfulness of the HAProxy Data Plane API simulator: auth, versions, transactions, envelopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from vnf_operator.testing.simulators import DataplaneSimulator, SimulatorConfig

pytestmark = pytest.mark.integration

CREDS = DataplaneSimulator.default_credentials
CONFIG = "/v3/services/haproxy/configuration"


@pytest.fixture
async def sim() -> AsyncIterator[DataplaneSimulator]:
    simulator = DataplaneSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: DataplaneSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(CREDS.username, CREDS.password)) as client:
        yield client


async def version(api: httpx.AsyncClient) -> int:
    resp = await api.get(f"{CONFIG}/version")
    assert resp.status_code == 200
    value = resp.json()
    assert isinstance(value, int)
    return value


def backend(name: str, **servers: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "mode": "tcp", "balance": {"algorithm": "roundrobin"}, "servers": servers}


async def test_basic_auth_is_enforced(sim: DataplaneSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(CREDS.username, "wrong")) as client:
        resp = await client.get(f"{CONFIG}/backends")
    assert resp.status_code == 401
    assert resp.json() == {"code": 401, "message": "unauthorized"}
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_versioned_write_bumps_the_version_and_stale_versions_get_409(api: httpx.AsyncClient) -> None:
    assert await version(api) == 1
    resp = await api.post(
        f"{CONFIG}/backends", params={"version": 1, "force_reload": "true"}, json={"name": "web"}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["Configuration-Version"] == "2"
    assert await version(api) == 2
    stale = await api.post(f"{CONFIG}/backends", params={"version": 1}, json={"name": "api"})
    assert stale.status_code == 409
    assert stale.json()["code"] == 409 and "version mismatch" in stale.json()["message"]
    missing = await api.post(f"{CONFIG}/backends", json={"name": "api"})
    assert missing.status_code == 400
    assert missing.json()["message"] == "version or transaction not specified"
    assert [b["name"] for b in (await api.get(f"{CONFIG}/backends")).json()] == ["web"]


async def test_write_without_force_reload_is_accepted_with_a_reload_id(api: httpx.AsyncClient) -> None:
    resp = await api.post(f"{CONFIG}/backends", params={"version": 1}, json={"name": "web"})
    assert resp.status_code == 202
    assert resp.headers["Reload-ID"]


async def test_transaction_stages_changes_until_commit(
    api: httpx.AsyncClient, sim: DataplaneSimulator
) -> None:
    tx = (await api.post("/v3/services/haproxy/transactions", params={"version": 1})).json()
    assert tx["status"] == "in_progress" and tx["_version"] == 1
    params = {"transaction_id": tx["id"], "full_section": "true"}
    resp = await api.post(
        f"{CONFIG}/backends", params=params, json=backend("web", s1={"address": "10.0.0.1", "port": 80})
    )
    assert resp.status_code == 202, resp.text
    # Staged: the live configuration does not have it, the transaction's view does.
    assert (await api.get(f"{CONFIG}/backends")).json() == []
    staged = await api.get(f"{CONFIG}/backends/web/servers", params={"transaction_id": tx["id"]})
    assert [s["name"] for s in staged.json()] == ["s1"]
    commit = await api.put(f"/v3/services/haproxy/transactions/{tx['id']}", params={"force_reload": "true"})
    assert commit.status_code == 200, commit.text
    assert commit.json()["status"] == "success"
    assert await version(api) == 2
    assert "server s1 10.0.0.1:80" in sim.haproxy.render()
    again = await api.put(f"/v3/services/haproxy/transactions/{tx['id']}")
    assert again.status_code == 406


async def test_outdated_transaction_is_refused(api: httpx.AsyncClient) -> None:
    tx = (await api.post("/v3/services/haproxy/transactions", params={"version": 1})).json()
    await api.post(f"{CONFIG}/backends", params={"transaction_id": tx["id"]}, json={"name": "a"})
    await api.post(f"{CONFIG}/backends", params={"version": 1, "force_reload": "true"}, json={"name": "b"})
    commit = await api.put(f"/v3/services/haproxy/transactions/{tx['id']}")
    assert commit.status_code == 406
    assert (await api.get(f"/v3/services/haproxy/transactions/{tx['id']}")).json()["status"] == "outdated"
    assert [b["name"] for b in (await api.get(f"{CONFIG}/backends")).json()] == ["b"]


async def test_n_changes_in_one_transaction_are_one_reload(
    api: httpx.AsyncClient, sim: DataplaneSimulator
) -> None:
    await api.post(f"{CONFIG}/backends", params={"version": 1, "force_reload": "true"}, json={"name": "old"})
    reloads = len(sim.reloads)
    tx = (await api.post("/v3/services/haproxy/transactions", params={"version": 2})).json()
    staged = {"transaction_id": tx["id"]}
    answers = [
        await api.post(f"{CONFIG}/backends", params=staged, json={"name": "a"}),
        await api.post(f"{CONFIG}/backends", params=staged, json={"name": "b"}),
        await api.put(f"{CONFIG}/backends/a", params=staged, json={"name": "a", "mode": "http"}),
        await api.delete(f"{CONFIG}/backends/old", params=staged),
    ]
    assert [r.status_code for r in answers] == [202, 202, 202, 202]
    assert len(sim.reloads) == reloads and await version(api) == 2  # nothing live yet
    commit = await api.put(f"/v3/services/haproxy/transactions/{tx['id']}", params={"force_reload": "true"})
    assert commit.status_code == 200, commit.text
    assert len(sim.reloads) == reloads + 1 and await version(api) == 3
    assert {b["name"]: b["mode"] for b in (await api.get(f"{CONFIG}/backends")).json()} == {
        "a": "http",
        "b": "tcp",
    }


async def test_a_deleted_transaction_changes_nothing(api: httpx.AsyncClient, sim: DataplaneSimulator) -> None:
    tx = (await api.post("/v3/services/haproxy/transactions", params={"version": 1})).json()
    await api.post(f"{CONFIG}/backends", params={"transaction_id": tx["id"]}, json={"name": "a"})
    dropped = await api.delete(f"/v3/services/haproxy/transactions/{tx['id']}")
    assert dropped.status_code == 204
    assert (await api.get(f"/v3/services/haproxy/transactions/{tx['id']}")).status_code == 404
    late = await api.post(f"{CONFIG}/backends", params={"transaction_id": tx["id"]}, json={"name": "b"})
    assert late.status_code == 404
    assert (await api.get(f"{CONFIG}/backends")).json() == []
    assert sim.reloads == [] and await version(api) == 1


async def test_full_section_reads_and_writes_children(api: httpx.AsyncClient) -> None:
    body = backend("web", s1={"address": "10.0.0.1", "port": 80, "weight": 5})
    resp = await api.post(f"{CONFIG}/backends", params={"version": 1, "full_section": "true"}, json=body)
    assert resp.status_code == 202
    plain = (await api.get(f"{CONFIG}/backends")).json()
    assert "servers" not in plain[0]
    full = (await api.get(f"{CONFIG}/backends", params={"full_section": "true"})).json()
    assert full[0]["servers"] == {"s1": {"name": "s1", "address": "10.0.0.1", "port": 80, "weight": 5}}
    # A backend replaced without full_section keeps its servers.
    put = await api.put(f"{CONFIG}/backends/web", params={"version": 2}, json={"name": "web", "mode": "http"})
    assert put.status_code == 202
    servers = (await api.get(f"{CONFIG}/backends/web/servers")).json()
    assert [s["name"] for s in servers] == ["s1"]


async def test_invalid_configuration_is_refused_and_changes_nothing(api: httpx.AsyncClient) -> None:
    body = {
        "name": "fe",
        "default_backend": "missing",
        "binds": {"fe": {"address": "127.0.0.1", "port": 8080}},
    }
    resp = await api.post(f"{CONFIG}/frontends", params={"version": 1, "full_section": "true"}, json=body)
    assert resp.status_code == 400
    assert "default_backend 'missing'" in resp.json()["message"]
    assert await version(api) == 1
    bad_port = await api.post(
        f"{CONFIG}/backends/none/servers",
        params={"version": 1},
        json={"name": "s", "address": "x", "port": 0},
    )
    assert bad_port.status_code == 422


async def test_duplicates_and_missing_items(api: httpx.AsyncClient) -> None:
    await api.post(f"{CONFIG}/backends", params={"version": 1}, json={"name": "web"})
    dup = await api.post(f"{CONFIG}/backends", params={"version": 2}, json={"name": "web"})
    assert dup.status_code == 409 and "already exists" in dup.json()["message"]
    gone = await api.delete(f"{CONFIG}/backends/nope", params={"version": 2})
    assert gone.status_code == 404
    deleted = await api.delete(f"{CONFIG}/backends/web", params={"version": 2, "force_reload": "true"})
    assert deleted.status_code == 204


async def test_v2_wraps_answers_in_the_version_envelope(api: httpx.AsyncClient) -> None:
    await api.post("/v2/services/haproxy/configuration/backends", params={"version": 1}, json={"name": "web"})
    resp = await api.post(
        "/v2/services/haproxy/configuration/servers",
        params={"backend": "web", "version": 2},
        json={"name": "s1", "address": "10.0.0.1", "port": 80},
    )
    assert resp.status_code == 202, resp.text
    listed = (await api.get("/v2/services/haproxy/configuration/servers", params={"backend": "web"})).json()
    assert listed == {"_version": 3, "data": [{"name": "s1", "address": "10.0.0.1", "port": 80}]}


async def test_health_info_and_raw(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v3/health")).json() == {"haproxy": "up"}
    assert (await api.get("/v3/info")).json()["api"]["version"].startswith("v3.")
    await api.post(
        f"{CONFIG}/backends",
        params={"version": 1, "full_section": "true"},
        json=backend("web", s1={"address": "10.0.0.1", "port": 80}),
    )
    raw = await api.get(f"{CONFIG}/raw")
    assert raw.headers["Configuration-Version"] == "2"
    assert "backend web" in raw.text and "server s1 10.0.0.1:80 weight 100" in raw.text


async def test_a_refused_reload_changes_nothing(api: httpx.AsyncClient, sim: DataplaneSimulator) -> None:
    """With a real HAProxy behind it (`reload_hook`), a configuration HAProxy refuses is not kept."""

    async def refuse(config: Any) -> None:
        raise RuntimeError("[ALERT] parsing haproxy.cfg failed")

    sim.reload_hook = refuse
    resp = await api.post(
        f"{CONFIG}/backends", params={"version": 1, "force_reload": "true"}, json={"name": "a"}
    )
    assert resp.status_code == 400
    assert "HAProxy refused the configuration" in resp.json()["message"]
    assert await version(api) == 1
    assert (await api.get(f"{CONFIG}/backends")).json() == []
