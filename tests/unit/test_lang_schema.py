"""The committed JSON Schema and reference document are generated from the model and current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from vnf_operator.core.schema_export import (
    REFERENCE_PATH,
    SCHEMA_PATH,
    provider_json_schema,
    reference_markdown,
    schema_text,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_is_current() -> None:
    committed = (ROOT / SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == schema_text(), "stale schema: run `vnfctl schema --write .`"


def test_committed_reference_is_current() -> None:
    committed = (ROOT / REFERENCE_PATH).read_text(encoding="utf-8")
    assert committed == reference_markdown(), "stale reference: run `vnfctl schema --write .`"


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(provider_json_schema())


def test_every_key_has_a_description_and_appears_in_the_reference() -> None:
    schema = provider_json_schema()
    reference = reference_markdown(schema)
    for name, d in schema["$defs"].items():
        assert d.get("description"), name
        assert f"## {name}" in reference
        for key, prop in d.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key} has no description"
            assert f"| `{key}` |" in reference


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (ROOT / "providers").glob("*.yaml") if p.name != "kustomization.yaml"),
    ids=lambda p: p.stem,
)
def test_shipped_providers_validate_against_the_schema(path: Path) -> None:
    doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(provider_json_schema()).validate(doc)


def test_schema_rejects_unknown_keys_and_bad_names() -> None:
    v = jsonschema.Draft202012Validator(provider_json_schema())
    base = {"info": {"name": "x", "vendor": "y"}, "connections": {"api": {"type": "https"}}}
    assert v.is_valid(base)
    assert not v.is_valid({**base, "servcies": {}})
    assert not v.is_valid({**base, "connections": {"bad name": {"type": "https"}}})


def test_schema_marks_templates() -> None:
    text = json.dumps(provider_json_schema())
    assert '"x-vnf-template": true' in text
