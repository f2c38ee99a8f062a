"""e2e fixtures: real network functions (sshd, nftables, FRR, HAProxy) in network namespaces.

`linux_router_lab` is one `LinuxRouterLab` per test module (see docs/linux-router.md). It needs
root; it is skipped only when not running as root. Missing Debian packages are an error, not a
skip: `make deps` (hack/install-deps.sh) installs them.

The operator e2e tests (`test_*_operator.py`) also use the integration tier's control plane
fixtures (`control_plane`, `kubectl`, `operator_kubeconfig`, `namespace`), imported below.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tests.integration.conftest import control_plane, kubectl, namespace, operator_kubeconfig  # noqa: F401

from vnf_operator.testing.netns import LabConfig, LinuxRouterLab


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the Linux router lab needs root (network namespaces)")


@pytest.fixture(scope="module")
def linux_router_lab_config() -> LabConfig:
    """Override in a test module to change the lab's address plan or options."""
    return LabConfig()


@pytest.fixture(scope="module")
def linux_router_lab(linux_router_lab_config: LabConfig) -> Iterator[LinuxRouterLab]:
    """A running Linux router lab, shared by the tests of one module, torn down after them.

    Tests that change the router should undo it (`lab.reset_nftables()`, `no router bgp ...`,
    rewrite + `lab.haproxy_reload()`), so the order of tests in a module does not matter.
    """
    _require_root()
    with LinuxRouterLab(linux_router_lab_config) as lab:
        yield lab
