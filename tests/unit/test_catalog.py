"""The provider catalog: every dictionary loads, and `kubectl apply -k providers/` installs all of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vnf_operator.core.loader import load_provider_file

pytestmark = pytest.mark.unit

PROVIDERS = Path(__file__).resolve().parents[2] / "providers"
FILES = sorted(p for p in PROVIDERS.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_provider_is_valid(path: Path) -> None:
    loaded = load_provider_file(path)
    assert loaded.name == path.stem
    assert loaded.dictionary.services, "a provider offers at least one service"
    assert loaded.dictionary.health_checks, "a provider says how to tell the appliance is healthy"


def test_kustomization_lists_every_provider() -> None:
    kustomization = yaml.safe_load((PROVIDERS / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in FILES)
