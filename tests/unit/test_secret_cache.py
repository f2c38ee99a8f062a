"""The Secret cache fed by the watch, the reverse index of Secret users, the bootstrap probe: cadence
and when the health checks answer it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vnf_operator.controller.finalizers import FINALIZER, KOPF_FINALIZER, _patch, has_finalizer
from vnf_operator.controller.state import Cache, secret_watch_enabled
from vnf_operator.core.loader import load_provider_file
from vnf_operator.core.model import HealthCheck, ProviderDictionary
from vnf_operator.engine.bootstrap import probe_due, probe_is_health
from vnf_operator.engine.secrets import SecretCache
from vnf_operator.k8s.client import NotFound, decode_secret_data

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


class Reader:
    """The apiserver as the cache sees it: counts reads."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads = 0

    async def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        self.reads += 1
        if (namespace, name) not in self.secrets:
            raise NotFound(f"Secret {namespace}/{name} not found", status=404)
        return dict(self.secrets[(namespace, name)])


def appliance(name: str, secret: str, ns: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "generation": 1},
        "spec": {"credentialsSecretRef": {"name": secret}, "tls": {"caSecretRef": {"name": "ca"}}},
    }


async def test_watched_secret_is_served_without_a_read() -> None:
    cache = Cache()
    cache.remember_appliance(appliance("fw", "creds"))
    reader = Reader({})
    sc = SecretCache(reader, cache.wants_secret)
    assert sc.observe("ns", "creds", {"api_key": "k1"}) is True
    assert await sc.get_secret("ns", "creds") == {"api_key": "k1"}
    assert reader.reads == 0
    # The same data again (a watch restart) is no change; new data is, and is served.
    assert sc.observe("ns", "creds", {"api_key": "k1"}) is False
    assert sc.observe("ns", "creds", {"api_key": "k2"}) is True
    assert await sc.get_secret("ns", "creds") == {"api_key": "k2"}
    assert reader.reads == 0


async def test_unused_secrets_are_neither_kept_nor_decoded() -> None:
    cache = Cache()
    cache.remember_appliance(appliance("fw", "creds"))
    sc = SecretCache(Reader({}), cache.wants_secret)
    assert not sc.tracks("ns", "someone-elses")
    assert sc.observe("ns", "someone-elses", {"password": "x"}) is False
    assert not sc.tracks("other-ns", "creds")
    assert len(sc) == 0


async def test_a_miss_reads_through_once_and_not_found_is_remembered() -> None:
    cache = Cache()
    cache.remember_appliance(appliance("fw", "creds"))
    reader = Reader({("ns", "creds"): {"api_key": "k"}})
    sc = SecretCache(reader, cache.wants_secret)
    assert await sc.get_secret("ns", "creds") == {"api_key": "k"}
    assert await sc.get_secret("ns", "creds") == {"api_key": "k"}
    assert reader.reads == 1
    for _ in range(2):
        with pytest.raises(NotFound):
            await sc.get_secret("ns", "fw-bootstrap-outputs")
    assert reader.reads == 2
    # Created later: the watch event replaces the remembered absence.
    assert sc.observe("ns", "fw-bootstrap-outputs", {"api_key": "generated"}) is True
    assert await sc.get_secret("ns", "fw-bootstrap-outputs") == {"api_key": "generated"}
    assert reader.reads == 2


async def test_deletion_and_rotation_through_the_watch() -> None:
    cache = Cache()
    cache.remember_appliance(appliance("fw", "creds"))
    sc = SecretCache(Reader({}), cache.wants_secret)
    sc.observe("ns", "creds", {"api_key": "k"})
    assert sc.observe("ns", "creds", None) is True
    with pytest.raises(NotFound):
        await sc.get_secret("ns", "creds")


async def test_secrets_of_a_read_nobody_uses_are_not_kept() -> None:
    """A backup or another Secret read through the cache stays out of memory."""
    reader = Reader({("ns", "backup"): {"config": "big"}})
    sc = SecretCache(reader, Cache().wants_secret)
    await sc.get_secret("ns", "backup")
    await sc.get_secret("ns", "backup")
    assert reader.reads == 2 and len(sc) == 0


async def test_written_secret_is_read_again_and_forgotten_with_its_appliance() -> None:
    cache = Cache()
    cache.remember_appliance(appliance("fw", "creds"))
    reader = Reader({("ns", "creds"): {"api_key": "k"}})
    sc = SecretCache(reader, cache.wants_secret)
    sc.observe("ns", "fw-bootstrap-outputs", {"api_key": "old"})
    sc.invalidate("ns", "fw-bootstrap-outputs")
    reader.secrets[("ns", "fw-bootstrap-outputs")] = {"api_key": "new"}
    assert await sc.get_secret("ns", "fw-bootstrap-outputs") == {"api_key": "new"}
    await sc.get_secret("ns", "creds")
    assert len(sc) == 2
    used = cache.forget_appliance("ns", "fw")
    assert used == {"creds", "ca", "fw-bootstrap-outputs"}
    sc.discard_unwanted("ns", used)
    assert len(sc) == 0


def test_secret_users_index_follows_spec_changes() -> None:
    cache = Cache()
    cache.remember_appliance(appliance("a", "shared"))
    cache.remember_appliance(appliance("b", "shared"))
    cache.remember_appliance(appliance("c", "own", ns="other"))
    assert list(cache.appliances_using_secret("ns", "shared")) == [
        ("appliance", "ns", "a"),
        ("appliance", "ns", "b"),
    ]
    assert list(cache.appliances_using_secret("ns", "ca")) == [
        ("appliance", "ns", "a"),
        ("appliance", "ns", "b"),
    ]
    # b moves to another Secret: it no longer uses the shared one.
    cache.remember_appliance(appliance("b", "rotated"))
    assert list(cache.appliances_using_secret("ns", "shared")) == [("appliance", "ns", "a")]
    assert list(cache.appliances_using_secret("ns", "rotated")) == [("appliance", "ns", "b")]
    cache.forget_appliance("ns", "a")
    assert not cache.wants_secret("ns", "shared")
    assert cache.wants_secret("ns", "b-bootstrap-outputs") and not cache.wants_secret(
        "ns", "a-bootstrap-outputs"
    )
    assert list(cache.appliances_using_secret("ns", "own")) == []


def test_decode_secret_data() -> None:
    assert decode_secret_data({"data": {"k": "dmFsdWU="}}) == {"k": "value"}
    assert decode_secret_data({}) == {}


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("true", True), ("false", False), ("0", False)])
def test_secret_watch_switch(monkeypatch: pytest.MonkeyPatch, value: str | None, enabled: bool) -> None:
    if value is None:
        monkeypatch.delenv("VNF_SECRET_WATCH", raising=False)
    else:
        monkeypatch.setenv("VNF_SECRET_WATCH", value)
    assert secret_watch_enabled() is enabled


READY = {"bootstrap": {"completed": True}, "conditions": [{"type": "Ready", "status": "True"}]}


@pytest.mark.parametrize(
    ("status", "last", "now", "due"),
    [
        (READY, None, 100.0, True),  # first reconcile in this process
        (READY, 90.0, 100.0, False),  # healthy and probed recently: skipped
        (READY, 90.0, 700.0, True),  # the slow cadence
        ({"conditions": READY["conditions"]}, 90.0, 100.0, True),  # never bootstrapped
        ({**READY, "conditions": [{"type": "Ready", "status": "False"}]}, 90.0, 100.0, True),  # unhealthy
        ({"bootstrap": {"completed": True}}, 90.0, 100.0, True),  # no conditions yet
    ],
)
def test_bootstrap_probe_cadence(status: dict[str, Any], last: float | None, now: float, due: bool) -> None:
    assert probe_due(status, last, now, 600.0) is due


def test_finalizer_patch_is_guarded_by_the_resource_version() -> None:
    body = {"metadata": {"name": "fw", "resourceVersion": "42", "finalizers": ["other/x", FINALIZER]}}
    assert has_finalizer(body)
    assert _patch(body, ["other/x"]) == {"metadata": {"finalizers": ["other/x"], "resourceVersion": "42"}}
    assert _patch({"metadata": {}}, []) == {"metadata": {"finalizers": None}}
    assert KOPF_FINALIZER != FINALIZER


def test_probe_answered_by_health_checks_only_when_it_is_one() -> None:
    opn = load_provider_file(ROOT / "providers" / "opnsense.yaml").dictionary
    assert opn.bootstrap is not None
    check = next(c for c in opn.health_checks if c.http is not None)
    assert check.http is not None

    def with_probe(*probe: HealthCheck) -> ProviderDictionary:
        assert opn.bootstrap is not None
        return opn.model_copy(
            update={"bootstrap": opn.bootstrap.model_copy(update={"needed_when": list(probe)})}
        )

    assert probe_is_health(with_probe(check.model_copy(update={"name": "key_works", "phase": "service"})))
    elsewhere = check.model_copy(update={"http": check.http.model_copy(update={"path": "/elsewhere"})})
    assert not probe_is_health(with_probe(check, elsewhere))
    assert not probe_is_health(with_probe())
