"""Every status fixture, classified by kstatus' generic rules (what Flux and `kubectl wait`-style tools see).

The rules (kubernetes-sigs/cli-utils pkg/kstatus: status/generic.go for 1-3, README "The Ready
Condition" for 4, status.go Compute for 5), for a custom resource:

1. ``metadata.deletionTimestamp`` set -> Terminating.
2. ``status.observedGeneration`` present and != ``metadata.generation`` -> InProgress
   (LatestGenerationNotObserved). No observedGeneration: the check is skipped.
3. The conditions, in list order: the first ``Reconciling=True`` -> InProgress, or the first
   ``Stalled=True`` -> Failed.
4. A ``Ready`` condition: True -> Current, False -> InProgress.
5. Anything else (no status, no conditions, Ready=Unknown) -> Current.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "status"
KSTATUSES = {"Current", "InProgress", "Failed", "Terminating"}

EXPECTED: dict[str, str] = {
    "appliance-healthy": "Current",
    "appliance-progressing": "InProgress",
    "appliance-degraded": "InProgress",  # Ready=False without Stalled: kstatus cannot tell "doomed"
    "appliance-ready-false-progressing": "InProgress",
    "appliance-generation-mismatch": "InProgress",
    "appliance-deleting": "Terminating",
    "appliance-no-status": "Current",  # kstatus' documented corner case: nothing to go by
    "appliance-stalled": "Failed",
    "appliance-paused": "Current",  # kstatus has no notion of paused
    "appliance-ready-and-reconciling": "InProgress",
    "appliance-no-observed-generation": "Current",
    "provider-healthy": "Current",
    "provider-stalled": "Failed",
    "provider-generation-mismatch": "InProgress",
    "operation-succeeded": "Current",
    "operation-failed": "Failed",
    "operation-running": "InProgress",
    "operation-pending": "Current",
    "operation-deleting": "Terminating",
}


def kstatus(obj: Mapping[str, Any]) -> str:
    """kstatus' Compute() for a custom resource (the generic rules above)."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress"
    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return "InProgress"
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return "Failed"
    for cond in conditions:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return "Current"
            if cond.get("status") == "False":
                return "InProgress"
            break
    return "Current"


def load(path: Path) -> dict[str, Any]:
    obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(obj, dict)
    return obj


def fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.yaml"))


def test_every_fixture_has_an_expected_kstatus() -> None:
    assert {p.stem for p in fixtures()} == set(EXPECTED)
    assert set(EXPECTED.values()) == KSTATUSES, "each kstatus outcome has a fixture"


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.stem)
def test_fixture_classification(path: Path) -> None:
    assert kstatus(load(path)) == EXPECTED[path.stem]


def test_fixtures_are_well_formed_conditions() -> None:
    """metav1.Condition: the CRDs require type, status, reason, message and lastTransitionTime."""
    for path in fixtures():
        obj = load(path)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            assert {"type", "status", "reason", "message", "lastTransitionTime"} <= set(cond), path.name
            assert cond["status"] in {"True", "False", "Unknown"}, path.name
            assert isinstance(cond["lastTransitionTime"], str), f"{path.name}: quote timestamps"
        assert isinstance((obj.get("metadata") or {}).get("deletionTimestamp", ""), str), path.name


def test_argo_cd_health_is_consistent_with_kstatus() -> None:
    """The documented correspondence between the two views, fixture by fixture."""
    doc = load(REPO / "manifests" / "argocd" / "health_test.yaml")
    argo = {Path(c["inputPath"]).stem: c["healthStatus"] for c in doc["tests"]}
    assert set(argo) == set(EXPECTED)
    for name, ks in EXPECTED.items():
        health = argo[name]
        if ks == "Terminating":
            assert health == {"status": "Progressing", "message": "Pending deletion"}, name
        if ks == "Failed":
            assert health["status"] == "Degraded", name
        if health["status"] == "Healthy":
            assert ks in {"Current", "InProgress"}, name
        if health["status"] == "Degraded":
            assert ks in {"Failed", "InProgress"}, name


# -- the operator's own implementation, when it exists ---------------------------------------


def _find_operator_kstatus() -> tuple[Any, str]:
    if importlib.util.find_spec("vnf_operator.core.conditions") is None:
        return None, "vnf_operator/core/conditions.py does not exist yet"
    fn = getattr(importlib.import_module("vnf_operator.core.conditions"), "kstatus_status", None)
    if fn is None:
        return None, "vnf_operator.core.conditions has no kstatus_status()"
    return fn, ""


_OPERATOR_KSTATUS, _MISSING = _find_operator_kstatus()
needs_operator_kstatus = pytest.mark.skipif(_OPERATOR_KSTATUS is None, reason=_MISSING)


def _normalise(result: Any) -> str:
    """Accept a str, an Enum, a (status, message) tuple or an object with a `status` attribute."""
    if isinstance(result, tuple):
        result = result[0]
    if hasattr(result, "status") and not isinstance(result, (str, Enum)):
        result = result.status
    if isinstance(result, Enum):
        result = result.value
    assert isinstance(result, str), f"unexpected kstatus_status() result {result!r}"
    return result


@needs_operator_kstatus
@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.stem)
def test_operator_kstatus_agrees_on_fixtures(path: Path) -> None:
    assert _normalise(_OPERATOR_KSTATUS(load(path))) == EXPECTED[path.stem]


_condition = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Ready", "Reconciling", "Stalled", "Healthy", "InSync"]),
        "status": st.sampled_from(["True", "False", "Unknown"]),
        "reason": st.just("Something"),
        "message": st.just(""),
        "lastTransitionTime": st.just("2026-05-01T10:00:00Z"),
    }
)


@st.composite
def _objects(draw: st.DrawFn) -> dict[str, Any]:
    generation = draw(st.integers(1, 3))
    meta: dict[str, Any] = {"name": "x", "namespace": "n", "generation": generation}
    if draw(st.integers(0, 5)) == 0:
        meta["deletionTimestamp"] = "2026-05-01T11:00:00Z"
    obj: dict[str, Any] = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": meta,
    }
    if draw(st.integers(0, 5)) > 0:
        status: dict[str, Any] = {
            "conditions": draw(st.lists(_condition, max_size=4, unique_by=lambda c: c["type"]))
        }
        observed = draw(st.one_of(st.none(), st.just(generation), st.integers(1, 3)))
        if observed is not None:
            status["observedGeneration"] = observed
        obj["status"] = status
    return obj


def _flux_corner(obj: Mapping[str, Any]) -> bool:
    """Where core/conditions.py follows Flux rather than cli-utils (see docs/observability.md).

    Ready=Unknown (cli-utils: Current, Flux: InProgress) and Reconciling=True together with
    Stalled=True (cli-utils: the first in list order, conditions.py: Reconciling).
    """
    conds = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}
    return conds.get("Ready") == "Unknown" or (conds.get("Reconciling") == conds.get("Stalled") == "True")


@needs_operator_kstatus
@settings(max_examples=300, deadline=None)
@given(obj=_objects())
def test_operator_kstatus_agrees_on_any_status(obj: dict[str, Any]) -> None:
    assume(not _flux_corner(obj))
    assert _normalise(_OPERATOR_KSTATUS(obj)) == kstatus(obj)
