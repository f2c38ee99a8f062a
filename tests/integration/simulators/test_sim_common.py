"""Cross-vendor simulator machinery: fault knobs, admin endpoints, TLS, telemetry, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from vnf_operator.testing.simulators import (
    SIMULATORS,
    Credentials,
    FaultConfig,
    OpnsenseSimulator,
    SimulatorConfig,
    resolve_vendor,
)

pytestmark = pytest.mark.integration

KEY = OpnsenseSimulator.default_credentials.api_key
SECRET = OpnsenseSimulator.default_credentials.api_secret
SEARCH = "/api/firewall/filter/searchRule"


@pytest.fixture
async def sim() -> AsyncIterator[OpnsenseSimulator]:
    simulator = OpnsenseSimulator(SimulatorConfig())
    await simulator.start()
    yield simulator
    await simulator.stop()


async def statuses(base_url: str, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, auth=(KEY, SECRET)) as client:
        return [(await client.get(SEARCH)).status_code for _ in range(count)]


async def test_rate_limit_burst_answers_429_with_retry_after(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        knobs = await client.post("/_sim/faults", json={"rate_limit_burst": 2, "retry_after_s": 7})
        assert knobs.json()["rate_limit_burst_remaining"] == 2
        first, second, third = [await client.get(SEARCH) for _ in range(3)]
        assert first.status_code == second.status_code == 429
        assert first.headers["Retry-After"] == "7"
        assert third.status_code == 200
        stats = (await client.get("/_sim/stats")).json()
        assert stats["faults"]["rate_limited"] == 2
        assert stats["statuses"] == {"200": 1, "429": 2}


async def test_rate_limit_window_rejects_requests_over_the_limit(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        await client.post("/_sim/faults", json={"rate_limit_requests": 2, "rate_limit_window_s": 3600})
        codes = [(await client.get(SEARCH)).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        limited = await client.get(SEARCH)
        assert int(limited.headers["Retry-After"]) > 1


async def test_error_rate_with_a_seed_is_reproducible() -> None:
    runs = []
    for _ in range(2):
        sim = OpnsenseSimulator(SimulatorConfig(faults=FaultConfig(error_rate=0.5, seed=1234)))
        await sim.start()
        try:
            runs.append(await statuses(sim.base_url, 20))
        finally:
            await sim.stop()
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}  # with p=0.5 over 20 draws both occur for this seed


async def test_error_responses_use_the_vendor_error_shape(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        await client.post("/_sim/faults", json={"error_rate": 1.0, "error_status": 503})
        response = await client.get(SEARCH)
        assert response.status_code == 503
        assert "errorMessage" in response.json()
        await client.post("/_sim/faults", json={"error_rate": 0})
        assert (await client.get(SEARCH)).status_code == 200


async def test_timeout_hangs_past_the_client_timeout(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        await client.post("/_sim/faults", json={"timeout_rate": 1.0})
        with pytest.raises(httpx.ReadTimeout):
            await client.get(SEARCH, timeout=0.3)
        await client.post("/_sim/faults", json={"timeout_rate": 0.0})
        assert (await client.get(SEARCH)).status_code == 200


async def test_drop_closes_the_connection_mid_request(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        await client.post("/_sim/faults", json={"drop_rate": 1.0})
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(SEARCH)
        requests = (await client.get("/_sim/requests")).json()
        assert requests[-1] == {"method": "GET", "path": SEARCH, "status": 0}


async def test_fault_knobs_at_start_and_invalid_updates(sim: OpnsenseSimulator) -> None:
    slow = OpnsenseSimulator(SimulatorConfig(faults=FaultConfig(latency_ms=25)))
    await slow.start()
    try:
        async with httpx.AsyncClient(base_url=slow.base_url) as client:
            assert (await client.get("/_sim/faults")).json()["latency_ms"] == 25
    finally:
        await slow.stop()
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        unknown = await client.post("/_sim/faults", json={"chaos": 1})
        assert unknown.status_code == 400
        out_of_range = await client.post("/_sim/faults", json={"error_rate": 2})
        assert out_of_range.status_code == 400
        assert (await client.get("/_sim/faults")).json()["error_rate"] == 0


async def test_request_log_and_stats_never_hold_credentials_or_queries(sim: OpnsenseSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, auth=(KEY, SECRET)) as client:
        await client.get(SEARCH, params={"searchPhrase": "topsecret"})
        await client.post("/api/firewall/filter/addRule", json={"rule": {"description": "body-secret"}})
        dumped = json.dumps(
            [(await client.get("/_sim/requests")).json(), (await client.get("/_sim/stats")).json()]
        )
    for forbidden in (KEY, SECRET, "topsecret", "body-secret"):
        assert forbidden not in dumped
    assert '"path": "/api/firewall/filter/addRule"' in dumped


async def test_stats_reset(sim: OpnsenseSimulator) -> None:
    assert await statuses(sim.base_url, 2) == [200, 200]
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        assert (await client.get("/_sim/stats")).json()["total"] == 2
        await client.delete("/_sim/stats")
        assert (await client.get("/_sim/stats")).json()["total"] == 0
        assert (await client.get("/_sim/requests")).json() == []


async def test_tls_is_verified_with_the_exposed_ca() -> None:
    sim = OpnsenseSimulator(SimulatorConfig(tls=True))
    await sim.start()
    try:
        assert sim.base_url.startswith("https://127.0.0.1:")
        assert sim.tls_ca_pem is not None and "BEGIN CERTIFICATE" in sim.tls_ca_pem
        async with httpx.AsyncClient(auth=(KEY, SECRET), verify=sim.client_ssl_context()) as client:
            assert (await client.get(sim.base_url + SEARCH)).status_code == 200
        async with httpx.AsyncClient(verify=ssl.create_default_context()) as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(sim.base_url + SEARCH)
    finally:
        await sim.stop()


async def test_credentials_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "creds.yaml"
    path.write_text("api_key: file-key\napi_secret: file-secret\n")
    creds = Credentials.from_file(path, OpnsenseSimulator.default_credentials)
    assert creds.api_key == "file-key"
    assert creds.username == "root"
    assert "file-secret" not in repr(creds)
    sim = OpnsenseSimulator(SimulatorConfig(credentials=creds))
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            assert (await client.get(SEARCH, auth=("file-key", "file-secret"))).status_code == 200
            assert (await client.get(SEARCH, auth=(KEY, SECRET))).status_code == 401
    finally:
        await sim.stop()


def test_registry_resolves_names_and_rejects_unknown_vendors() -> None:
    assert resolve_vendor("OPNsense") is SIMULATORS["opnsense"]
    with pytest.raises(ValueError, match="unknown vendor"):
        resolve_vendor("nonexistent")


async def test_cli_runs_in_the_foreground_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vnf_operator.testing.simulators",
        "opnsense",
        "--port",
        "0",
        "--tls",
        "--tls-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not any(line.strip().startswith("admin:") for line in lines):
            raw = await asyncio.wait_for(process.stdout.readline(), 30)
            assert raw, "simulator exited early"
            lines.append(raw.decode())
        api_line = next(line for line in lines if line.strip().startswith("api:"))
        url = api_line.split()[-1]
        ca_file = tmp_path / "opnsense-ca.pem"
        context = ssl.create_default_context(cafile=str(ca_file))
        async with httpx.AsyncClient(verify=context) as client:
            assert (await client.get(url + SEARCH, auth=(KEY, SECRET))).status_code == 200
        output = "".join(lines)
        assert SECRET not in output and KEY not in output
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
