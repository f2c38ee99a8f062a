"""The Argo CD health checks (manifests/argocd/health/*.lua), run in a Lua 5.1 sandbox like Argo CD's.

Argo CD runs health scripts in gopher-lua (Lua 5.1) with only the base, table, package and a
"safe" os library open (util/lua/lua.go: `SkipOpenLibs` unless `useOpenLibs`), so the sandbox
here removes string, math, io, debug and coroutine, and string methods (`s:find()`), too.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lupa import lua51

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "manifests" / "argocd"
HEALTH_DIR = ARGOCD / "health"
FIXTURES = REPO / "tests" / "fixtures" / "status"
GROUP = "vnf.operators.dev"
KINDS = ("VnfProvider", "VnfAppliance", "VnfOperation")
VALID_HEALTH = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
PROGRESSING_REASONS = {
    "Progressing",
    "Reconciling",
    "Pending",
    "Initializing",
    "Bootstrapping",
    "BootstrapNotReady",
    "DependencyNotReady",
}

_SANDBOX = """
getmetatable("").__index = nil
local safe_os = { time = os.time, date = os.date, clock = os.clock }
string = nil
math = nil
io = nil
debug = nil
coroutine = nil
python = nil
os = safe_os
"""


def run_health(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """Run the health script of `kind` with `obj` as Argo CD does and return its health status table."""
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True)
    runtime.execute(_SANDBOX)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(_generator().lua_source(kind))
    assert lua51.lua_type(result) == "table", f"{kind}.lua must return a table, got {result!r}"
    out = {str(k): v for k, v in result.items()}
    assert set(out) <= {"status", "message"}, out
    assert out.get("status") in VALID_HEALTH, out
    assert isinstance(out.get("message", ""), str), out
    return {"status": out["status"], "message": out.get("message", "")}


def load(path: Path) -> dict[str, Any]:
    obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(obj, dict)
    return obj


def health_tests() -> list[dict[str, Any]]:
    doc = load(ARGOCD / "health_test.yaml")
    tests = doc["tests"]
    assert isinstance(tests, list)
    return tests


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("argocd_generate", ARGOCD / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- health_test.yaml ------------------------------------------------------------------------


@pytest.mark.parametrize("case", health_tests(), ids=lambda c: Path(c["inputPath"]).stem)
def test_health_test_yaml_case(case: dict[str, Any]) -> None:
    obj = load((ARGOCD / case["inputPath"]).resolve())
    assert obj["apiVersion"].startswith(GROUP + "/")
    assert run_health(obj["kind"], obj) == case["healthStatus"]


def test_every_fixture_has_an_expected_health() -> None:
    listed = {(ARGOCD / c["inputPath"]).resolve() for c in health_tests()}
    fixtures = set(FIXTURES.glob("*.yaml"))
    assert fixtures, "no status fixtures"
    unlisted = sorted(p.name for p in fixtures - listed)
    missing = sorted(str(p) for p in listed - fixtures)
    assert not unlisted and not missing, f"unlisted: {unlisted}, missing: {missing}"


def test_the_required_situations_are_covered() -> None:
    statuses = {(Path(c["inputPath"]).stem, c["healthStatus"]["status"]) for c in health_tests()}
    names = {name for name, _ in statuses}
    for situation in (
        "healthy",
        "progressing",
        "degraded",
        "generation-mismatch",
        "deleting",
        "no-status",
        "stalled",
        "paused",
    ):
        assert f"appliance-{situation}" in names
    for kind_prefix in ("appliance", "provider", "operation"):
        seen = {status for name, status in statuses if name.startswith(kind_prefix)}
        assert {"Healthy", "Progressing", "Degraded"} <= seen, (kind_prefix, seen)


def test_provider_script_agrees_with_the_appliance_script_except_for_pause() -> None:
    """VnfProvider.lua is VnfAppliance.lua without spec.paused: same answer on every other fixture."""
    compared = 0
    for case in health_tests():
        obj = load((ARGOCD / case["inputPath"]).resolve())
        if obj["kind"] != "VnfAppliance" or obj["spec"].get("paused"):
            continue
        assert run_health("VnfProvider", obj) == case["healthStatus"], case["inputPath"]
        compared += 1
    assert compared >= 8


# -- the ConfigMap ---------------------------------------------------------------------------


def test_configmap_carries_one_script_per_kind() -> None:
    cm = load(ARGOCD / "argocd-cm.yaml")
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == "argocd-cm"
    gen = _generator()
    expected = {f"resource.customizations.health.{GROUP}_{kind}": gen.lua_source(kind) for kind in KINDS}
    assert cm["data"] == expected
    assert {p.stem for p in HEALTH_DIR.glob("*.lua")} == {"kstatus", "VnfOperation"}
    for kind in KINDS:
        assert kind in cm["data"][f"resource.customizations.health.{GROUP}_{kind}"].splitlines()[0]


def test_configmap_is_the_generators_output() -> None:
    gen = _generator()
    assert (ARGOCD / "argocd-cm.yaml").read_text(encoding="utf-8") == gen.render(), (
        "run: python manifests/argocd/generate.py"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_scripts_use_no_library_argo_cd_leaves_closed(kind: str) -> None:
    source = _generator().lua_source(kind)
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    assert not re.search(r"\b(string|math|io|debug|coroutine)\s*\.", code)
    assert not re.search(r"\bos\s*\.\s*(execute|exit|getenv|remove|rename|tmpname)", code)
    assert not re.search(r":\s*(find|match|gmatch|gsub|sub|len|lower|upper|format|rep|byte)\s*\(", code)


def test_sandbox_really_closes_the_string_library() -> None:
    """Guards the other tests: a script calling string functions must fail here as in Argo CD."""
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(_SANDBOX)
    with pytest.raises(lua51.LuaError):
        runtime.execute('return ("abc"):find("b")')
    with pytest.raises(lua51.LuaError):
        runtime.execute('return string.find("abc", "b")')


# -- properties: the scripts implement the documented rules for any status ------------------


def _describe(cond: Mapping[str, Any], fallback: str) -> str:
    reason, message = cond.get("reason") or "", cond.get("message") or ""
    if reason and message:
        return f"{reason}: {message}"
    return message or reason or fallback


def reference_health(obj: Mapping[str, Any], *, pausable: bool) -> dict[str, str]:
    """The rules of docs/observability.md, in Python."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp") is not None:
        return {"status": "Progressing", "message": "Pending deletion"}
    if pausable and (obj.get("spec") or {}).get("paused") is True:
        return {"status": "Suspended", "message": "Paused: spec.paused is true"}
    status = obj.get("status")
    if status is None:
        return {"status": "Progressing", "message": "Waiting for the operator to report status"}
    generation = meta.get("generation")
    if generation is not None and status.get("observedGeneration") != generation:
        return {
            "status": "Progressing",
            "message": f"Waiting for the operator to observe generation {generation}",
        }
    conds: dict[str, Mapping[str, Any]] = {}
    for c in status.get("conditions") or []:
        conds.setdefault(c.get("type"), c)
    stalled, ready, reconciling = conds.get("Stalled"), conds.get("Ready"), conds.get("Reconciling")
    if stalled and stalled.get("status") == "True":
        return {"status": "Degraded", "message": _describe(stalled, "Stalled")}
    if ready and ready.get("status") == "True":
        return {"status": "Healthy", "message": _describe(ready, "Ready")}
    if reconciling and reconciling.get("status") == "True":
        return {"status": "Progressing", "message": _describe(reconciling, "Reconciling")}
    if ready and ready.get("status") == "False":
        health = "Progressing" if ready.get("reason") in PROGRESSING_REASONS else "Degraded"
        return {"status": health, "message": _describe(ready, "Not ready")}
    if ready:
        return {"status": "Progressing", "message": _describe(ready, "Waiting for the Ready condition")}
    return {"status": "Progressing", "message": "Waiting for the Ready condition"}


_condition = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Ready", "Reconciling", "Stalled", "Healthy", "InSync", "Bootstrapped"]),
        "status": st.sampled_from(["True", "False", "Unknown"]),
    },
    optional={
        "reason": st.sampled_from(
            ["", "Succeeded", "DeviceError", "InvalidSpec", *sorted(PROGRESSING_REASONS)]
        ),
        "message": st.sampled_from(["", "applying 2 changes", "timed out: 192.0.2.1"]),
    },
)


@st.composite
def _objects(draw: st.DrawFn) -> dict[str, Any]:
    generation = draw(st.integers(min_value=1, max_value=4))
    meta: dict[str, Any] = {"name": "x", "generation": generation}
    if draw(st.booleans()) and draw(st.booleans()):
        meta["deletionTimestamp"] = "2026-05-01T11:00:00Z"
    obj: dict[str, Any] = {"apiVersion": f"{GROUP}/v1alpha1", "metadata": meta, "spec": {}}
    if draw(st.booleans()) and draw(st.booleans()):
        obj["spec"]["paused"] = draw(st.booleans())
    if draw(st.integers(0, 9)) > 0:
        status: dict[str, Any] = {}
        observed = draw(st.one_of(st.none(), st.just(generation), st.integers(1, 4)))
        if observed is not None:
            status["observedGeneration"] = observed
        conditions = draw(st.lists(_condition, max_size=5))
        if conditions or draw(st.booleans()):
            status["conditions"] = conditions
        obj["status"] = status
    return obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_objects())
def test_appliance_script_follows_the_rules(obj: dict[str, Any]) -> None:
    assert run_health("VnfAppliance", obj) == reference_health(obj, pausable=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_objects())
def test_provider_script_follows_the_rules(obj: dict[str, Any]) -> None:
    assert run_health("VnfProvider", obj) == reference_health(obj, pausable=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phase=st.sampled_from([None, "Pending", "Running", "Succeeded", "Failed", "Weird"]),
    error=st.sampled_from([None, "", "HTTP 500"]),
    rows=st.one_of(st.none(), st.integers(0, 3)),
    deleting=st.booleans(),
)
def test_operation_script_follows_the_phase(
    phase: str | None, error: str | None, rows: int | None, deleting: bool
) -> None:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if error is not None:
        status["error"] = error
    if rows is not None:
        status["rowCount"] = rows
    meta: dict[str, Any] = {"name": "op", "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2026-05-01T11:00:00Z"
    got = run_health("VnfOperation", {"metadata": meta, "status": status})
    if deleting:
        assert got == {"status": "Progressing", "message": "Pending deletion"}
    elif phase == "Succeeded":
        assert got == {
            "status": "Healthy",
            "message": "Succeeded" if rows is None else f"Succeeded: {rows} row(s)",
        }
    elif phase == "Failed":
        assert got == {"status": "Degraded", "message": f"Failed: {error}" if error else "Failed"}
    else:
        assert got["status"] == "Progressing"
