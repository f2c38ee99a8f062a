"""A VnfProvider manifest may carry `spec.rollout` (the operator's, not the dictionary's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from vnf_operator.core.errors import DictionaryError
from vnf_operator.core.loader import load_provider_data

pytestmark = pytest.mark.unit

OPNSENSE = Path(__file__).resolve().parents[2] / "providers" / "opnsense.yaml"


def _manifest(rollout: Any) -> dict[str, Any]:
    doc = yaml.safe_load(OPNSENSE.read_text(encoding="utf-8"))
    doc["spec"]["rollout"] = rollout
    return dict(doc)


def test_a_valid_rollout_is_accepted_and_kept_out_of_the_dictionary() -> None:
    loaded = load_provider_data(_manifest({"maxUnavailable": "25%"}))
    assert "rollout" not in loaded.dictionary.model_dump(by_alias=True)


def test_a_malformed_rollout_names_its_field() -> None:
    with pytest.raises(DictionaryError) as err:
        load_provider_data(_manifest({"maxUnavailable": "lots"}))
    assert [p.path for p in err.value.problems] == ["spec.rollout"]
    assert "'lots' is neither an integer nor a percentage" in str(err.value)
