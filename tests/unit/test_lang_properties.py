"""Property tests: whatever the input, the loader answers with a LoadedProvider or a DictionaryError."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vnf_operator.core.errors import DictionaryError
from vnf_operator.core.loader import _KNOWN_KEYS, LoadedProvider, load_provider_data, load_provider_text

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
VALID = {
    p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
    for p in sorted((ROOT / "providers").glob("*.yaml"))
    if p.name != "kustomization.yaml"
}

keys = st.sampled_from(sorted(_KNOWN_KEYS)) | st.text(min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["{{ item.x }}", "{{ credentials.k }}", "$.rows[*]", "(?P<a>x)", "{% if %}", "https", "ssh", "basic"]
    )
)
yamlish = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)


def _accept(outcome: Any) -> None:
    assert isinstance(outcome, LoadedProvider)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_random_text_gives_a_dictionary_error(text: str) -> None:
    try:
        _accept(load_provider_text(text, source="random"))
    except DictionaryError as e:
        assert e.problems and e.source == "random"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_random_yaml_structures_give_a_dictionary_error(data: Any) -> None:
    text = yaml.safe_dump(data)
    try:
        _accept(load_provider_text(text))
    except DictionaryError as e:
        assert all(isinstance(p.path, str) and p.message for p in e.problems)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = {name: _paths(doc)[1:] for name, doc in VALID.items()}


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(VALID)), data=st.data(), replacement=yamlish)
def test_mutated_shipped_providers_give_precise_errors(
    name: str, data: st.DataObject, replacement: Any
) -> None:
    doc = copy.deepcopy(VALID[name])
    path = data.draw(st.sampled_from(PATHS[name]))
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = replacement
    try:
        load_provider_data(doc, source=name)
    except DictionaryError as e:
        assert e.problems
        for p in e.problems:
            assert p.path == "" or p.path.split(".")[0].split("[")[0] in (
                "spec",
                "metadata",
                "kind",
                "apiVersion",
            )
