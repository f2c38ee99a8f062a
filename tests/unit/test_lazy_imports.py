"""asyncssh and httpx load only when an SSH or a broker transport is built, not with the operator.

Each check runs in a fresh interpreter: this test process has long since imported both libraries.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

_HEAVY = ("asyncssh", "httpx", "httpcore", "anyio")


def _loaded_after(code: str) -> list[str]:
    """The heavy modules in sys.modules after running `code` in a new interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {_HEAVY!r} if m in sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_operator_import_loads_neither_asyncssh_nor_httpx() -> None:
    assert _loaded_after("import vnf_operator.controller.main") == []


def test_transport_package_reexports_stay_importable() -> None:
    code = (
        "import vnf_operator.transport as t\n"
        "assert 'SshTransport' in t.__all__ and 'BrokerTransport' in t.__all__\n"
        "from vnf_operator.transport import SshTransport, BrokerTransport\n"
        "from vnf_operator.transport.ssh import SshTransport as S\n"
        "from vnf_operator.transport.broker import BrokerTransport as B\n"
        "assert SshTransport is S and BrokerTransport is B"
    )
    assert {"asyncssh", "httpx"} <= set(_loaded_after(code))


def test_ssh_transport_from_the_pool_loads_asyncssh_only() -> None:
    code = (
        "from vnf_operator.transport import SshSettings, TransportPool\n"
        "import sys; assert 'asyncssh' not in sys.modules\n"
        "TransportPool().ssh('fw1', SshSettings(name='cli', host='192.0.2.1'))"
    )
    loaded = _loaded_after(code)
    assert "asyncssh" in loaded
    assert "httpx" not in loaded


def test_broker_transport_from_the_pool_loads_httpx_only() -> None:
    code = (
        "from vnf_operator.transport import HttpSettings, ReachSettings, TransportPool\n"
        "import sys; assert 'httpx' not in sys.modules\n"
        "reach = ReachSettings(mode='broker', broker_url='https://broker:8443', broker_token='t0k')\n"
        "TransportPool().http('fw1', HttpSettings(name='api', base_url='https://192.0.2.1'), reach=reach)"
    )
    loaded = _loaded_after(code)
    assert "httpx" in loaded
    assert "asyncssh" not in loaded
