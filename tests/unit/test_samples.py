"""Per-provider samples: current with their generator, and valid for their provider."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vnf_operator.core.itemschema import validate_items
from vnf_operator.core.loader import load_provider_file

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIRS = sorted(p for p in (ROOT / "manifests" / "samples").iterdir() if p.is_dir())


def test_samples_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_samples.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("sample", SAMPLE_DIRS, ids=[p.name for p in SAMPLE_DIRS])
def test_sample_is_valid_for_its_provider(sample: Path) -> None:
    appliance = yaml.safe_load((sample / "vnfappliance.yaml").read_text())
    secret = yaml.safe_load((sample / "secret.yaml").read_text())
    provider = load_provider_file(ROOT / "providers" / f"{appliance['spec']['providerRef']['name']}.yaml")
    d = provider.dictionary
    for name, svc in appliance["spec"]["services"].items():
        validate_items(d.services[name], svc["items"], where=f"spec.services.{name}.items")
    required = {n for n, c in d.credentials.items() if c.required and not c.bootstrap}
    assert required <= set(secret["stringData"])
    assert secret["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
