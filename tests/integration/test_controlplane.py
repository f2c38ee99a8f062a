"""The local control plane launcher: the session fixture's plane, and the up/down/status CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vnf_operator.testing.controlplane import ControlPlane, ControlPlaneError, Kubectl

pytestmark = pytest.mark.integration

COMPONENTS = ("etcd", "kube-apiserver")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vnf_operator.testing.controlplane", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pids(state_dir: Path) -> dict[str, int]:
    return {
        c: int((state_dir / f"{c}.pid").read_text()) for c in COMPONENTS if (state_dir / f"{c}.pid").exists()
    }


def test_admin_is_cluster_admin_over_loopback_tls(control_plane: ControlPlane, kubectl: Kubectl) -> None:
    assert control_plane.server.startswith("https://127.0.0.1:")
    user = json.loads(kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert user["username"] == "admin"
    assert "system:masters" in user["groups"]
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == control_plane.server
    assert control_plane.kubeconfig.stat().st_mode & 0o077 == 0  # holds the admin key


def test_rbac_is_enforced(control_plane: ControlPlane, tmp_path: Path) -> None:
    # A ServiceAccount with no bindings can do nothing: the apiserver really runs with RBAC.
    control_plane.kubectl("create", "serviceaccount", "nobody", "-n", "default")
    config = control_plane.service_account_kubeconfig("default", "nobody", tmp_path / "nobody.kubeconfig")
    result = control_plane.kubectl_as(config)("get", "namespaces", check=False)
    assert result.returncode != 0
    assert 'User "system:serviceaccount:default:nobody" cannot list resource "namespaces"' in result.stderr


def test_kubectl_failure_raises_with_stderr(control_plane: ControlPlane) -> None:
    with pytest.raises(ControlPlaneError, match='namespaces "does-not-exist" not found'):
        control_plane.kubectl("get", "namespace", "does-not-exist")


@pytest.fixture
def cli_state(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "cluster"
    yield state
    cli(state, "down")  # whatever the test did, leave nothing running


def test_cli_up_status_down_leaves_nothing_running(cli_state: Path) -> None:
    up = cli(cli_state, "up")
    assert up.returncode == 0, up.stderr
    assert "control plane started" in up.stdout
    assert f"KUBECONFIG={cli_state / 'admin.kubeconfig'}" in up.stdout
    running = pids(cli_state)
    assert set(running) == set(COMPONENTS)
    assert all(alive(pid) for pid in running.values())  # survived the exit of `up`

    status = cli(cli_state, "status")
    assert status.returncode == 0, status.stdout
    assert "(ready)" in status.stdout

    again = cli(cli_state, "up")
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert pids(cli_state) == running

    plane = ControlPlane(cli_state)
    assert plane.kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"

    down = cli(cli_state, "down")
    assert down.returncode == 0, down.stderr
    assert not any(alive(pid) for pid in running.values())
    assert pids(cli_state) == {}
    assert cli(cli_state, "status").returncode != 0


def test_cli_restart_keeps_data(cli_state: Path) -> None:
    assert cli(cli_state, "up").returncode == 0
    plane = ControlPlane(cli_state)
    plane.kubectl("create", "namespace", "kept")
    assert cli(cli_state, "down").returncode == 0
    assert cli(cli_state, "up").returncode == 0
    assert plane.kubectl("get", "namespace", "kept", "-o", "name").stdout.strip() == "namespace/kept"
    assert cli(cli_state, "up", "--fresh").returncode == 0
    assert plane.kubectl("get", "namespace", "kept", check=False).returncode != 0


def test_down_cleans_up_after_a_crash(cli_state: Path) -> None:
    assert cli(cli_state, "up").returncode == 0
    running = pids(cli_state)
    os.kill(running["kube-apiserver"], signal.SIGKILL)  # half a control plane is left: etcd only
    assert cli(cli_state, "status").returncode != 0
    assert alive(running["etcd"])
    assert cli(cli_state, "down").returncode == 0
    assert not alive(running["etcd"])


def test_down_never_kills_an_unrelated_process_with_a_recycled_pid(cli_state: Path) -> None:
    cli_state.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (cli_state / "etcd.pid").write_text(f"{bystander.pid}\n")
        assert cli(cli_state, "down").returncode == 0
        assert bystander.poll() is None
        assert not (cli_state / "etcd.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_up_after_crash_replaces_stale_processes(cli_state: Path) -> None:
    assert cli(cli_state, "up").returncode == 0
    first = pids(cli_state)
    os.kill(first["kube-apiserver"], signal.SIGKILL)
    up = cli(cli_state, "up")
    assert up.returncode == 0, up.stderr
    assert "control plane started" in up.stdout
    assert not alive(first["etcd"])  # the orphaned etcd was stopped, not left next to a new one
    assert cli(cli_state, "status").returncode == 0


def test_fixture_plane_dies_with_a_killed_test_session(tmp_path: Path) -> None:
    state = tmp_path / "plane"
    script = (
        "import sys, time\n"
        "from vnf_operator.testing.controlplane import ControlPlane\n"
        "ControlPlane(sys.argv[1], die_with_parent=True).start()\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    session = subprocess.Popen([sys.executable, "-c", script, str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert session.stdout is not None
        assert session.stdout.readline().strip() == "ready"
        running = pids(state)
        assert all(alive(pid) for pid in running.values())
        session.kill()  # no chance to run stop(): only PR_SET_PDEATHSIG can clean up
        session.wait()
        deadline = 50  # bounded wait for the kernel to deliver the signal, not a timing assertion
        while any(alive(pid) for pid in running.values()) and deadline:
            time.sleep(0.1)
            deadline -= 1
        assert not any(alive(pid) for pid in running.values())
    finally:
        session.kill()
        session.wait()
        cli(state, "down")
