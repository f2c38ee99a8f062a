"""Bad input: admissible but wrong specs stop with a precise reason and send nothing to the device.

Every appliance here points at one simulated OPNsense whose request counter must stay at zero
while the operator works through them. The CRD (and no webhook) admits all of them: the mistakes
are semantic (an unknown service, a missing Secret, a wrong key in a Secret, a missing or
malformed provider, an invalid item), so only the operator can report them.

Then each cause is fixed (the Secret created, the provider repaired) and the appliance that was
waiting converges without being touched: a wait, not a dead end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration import objects
from tests.integration.operator_runner import OperatorProcess, condition, get_json
from tests.integration.reliability import lab

from vnf_operator.engine.providers import load_entry

pytestmark = pytest.mark.integration

RULES = lab.make_rules(2, prefix="b")


def broken_semantics() -> dict[str, Any]:
    """Four semantic mistakes the loader must all report (structure is fine)."""
    doc = lab.opnsense_provider("reliability-broken")
    svc = doc["spec"]["services"]
    svc["firewall_rules"]["identity"]["key"] = ["nope"]
    svc["firewall_rules"]["operations"]["list"]["http"]["path"] = "/x/{{ undefined_thing }}"
    svc["firewall_rules"]["fields"]["action"]["default"] = "allow"
    svc["static_routes"]["dependsOn"] = ["no_such_service"]
    return doc


def broken_structure() -> dict[str, Any]:
    """Three structural mistakes the CRD's schema admits (those parts are free-form there)."""
    doc = lab.opnsense_provider("reliability-malformed")
    doc["spec"]["connections"]["api"]["port"] = "not-a-port"
    doc["spec"]["services"]["firewall_rules"]["bogusKey"] = 1
    doc["spec"]["healthChecks"][0]["phase"] = "sideways"
    return doc


EXPECTED_SEMANTIC = [
    ("spec.services.firewall_rules.identity.key[0]", "key field `nope` is not in `fields`"),
    ("spec.services.firewall_rules.operations.list.http.path", "unknown template variable `undefined_thing`"),
    (
        "spec.services.firewall_rules.fields.action.default",
        'default "allow" is not one of pass, block, reject',
    ),
    ("spec.services.static_routes.dependsOn[0]", "no service `no_such_service`"),
]
EXPECTED_STRUCTURE = [
    ("spec.connections.api.port", "valid integer"),
    ("spec.healthChecks[0].phase", "Input should be 'network', 'api' or 'service'"),
    ("spec.services.firewall_rules.bogusKey", "unknown key `bogusKey`"),
]


@pytest.fixture
def ns(kubectl: Any, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    yield namespace
    lab.purge(kubectl, namespace)


def _stopped(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    return bool(
        st.get("observedGeneration") == obj["metadata"].get("generation")
        and condition(obj, "Ready").get("status") == "False"
    )


def test_semantic_mistakes_stop_with_a_precise_reason_and_touch_nothing(
    kubectl: Any, ns: str, operator: OperatorProcess
) -> None:
    with lab.Device("bad-input") as device:
        good_secrets = lab.secret_objects(ns, "shared", device)
        base = {"credentialsSecretRef": {"name": "shared-api"}, "tls": {"caSecretRef": {"name": "shared-ca"}}}
        objs: list[dict[str, Any]] = [*good_secrets, broken_semantics(), broken_structure()]
        cases: dict[str, tuple[str, bool, list[str]]] = {}

        def case(name: str, reason: str, stalled: bool, needles: list[str], **spec: Any) -> None:
            obj = lab.appliance_object(ns, name, device, RULES, **{**base, **spec})
            objs.append(obj)
            cases[name] = (reason, stalled, needles)

        case(
            "unknown-service",
            "InvalidSpec",
            True,
            ["spec.services.firewall_rulez: provider opnsense has no such service",
             "(it has: firewall_rules, "],
            services={"firewall_rulez": {"items": RULES}},
        )  # fmt: skip
        case(
            "invalid-item",
            "InvalidSpec",
            True,
            ['spec.services.firewall_rules.items[1].action: "allow" is not one of pass, block, reject'],
            services={"firewall_rules": {"items": [RULES[0], {**RULES[1], "action": "allow"}]}},
        )
        case(
            "missing-secret",
            "SecretNotFound",
            True,
            [f"spec.credentialsSecretRef: Secret {ns}/missing-secret-api not found"],
            credentialsSecretRef={"name": "missing-secret-api"},
        )
        case(
            "missing-ca",
            "SecretNotFound",
            True,
            [f"spec.tls.caSecretRef: Secret {ns}/missing-ca-ca not found"],
            tls={"caSecretRef": {"name": "missing-ca-ca"}},
        )
        case(
            "no-provider",
            "ProviderNotFound",
            False,  # not stalled: it waits for the provider to appear
            ["VnfProvider 'reliability-nonexistent' does not exist"],
            providerRef={"name": "reliability-nonexistent"},
        )
        case(
            "broken-provider",
            "ProviderInvalid",
            True,
            ["VnfProvider 'reliability-broken' is invalid", "key field `nope` is not in `fields`"],
            providerRef={"name": "reliability-broken"},
        )
        case(
            "malformed-provider",
            "ProviderInvalid",
            True,
            ["VnfProvider 'reliability-malformed' is invalid", "spec.connections.api.port: Input should be"],
            providerRef={"name": "reliability-malformed"},
        )
        device.reset_stats()
        lab.apply(kubectl, objs)

        def all_stopped() -> dict[str, dict[str, Any]] | None:
            got = lab.appliances(kubectl, ns)
            return got if all(n in got and _stopped(got[n]) for n in cases) else None

        got = lab.wait_until(
            all_stopped,
            timeout=90,
            what="every bad appliance to report Ready=False",
            describe=lambda: lab.summary(lab.appliances(kubectl, ns)),
        )
        problems = []
        for name, (reason, stalled, needles) in cases.items():
            ready = condition(got[name], "Ready")
            if ready.get("reason") != reason:
                problems.append(
                    f"{name}: reason {ready.get('reason')!r}, want {reason!r}: {ready.get('message')}"
                )
            want_stalled = "True" if stalled else "False"
            if condition(got[name], "Stalled").get("status") != want_stalled:
                problems.append(
                    f"{name}: Stalled={condition(got[name], 'Stalled').get('status')}, want {want_stalled}"
                )
            for needle in needles:
                if needle not in str(ready.get("message")):
                    problems.append(f"{name}: message lacks {needle!r}: {ready.get('message')!r}")
        assert not problems, "\n".join(problems)
        # Nothing at all reached the device: no health check, no list, no login.
        assert device.total_requests() == 0, device.request_log()[:20]
        # Secret values never appear in what users see.
        assert lab.leaked_in_namespace(kubectl, ns, operator.output()) == 0

        # Fix the causes: each waiting appliance converges on its own (watches on Secrets/providers).
        fixes: list[dict[str, Any]] = [
            lab.secret_objects(ns, "missing-secret", device)[0],  # Secret missing-secret-api
            lab.secret_objects(ns, "missing-ca", device)[1],  # Secret missing-ca-ca
            lab.opnsense_provider("reliability-broken"),  # repaired
            lab.opnsense_provider("reliability-nonexistent"),  # appears
        ]
        lab.apply(kubectl, fixes)
        lab.wait_ready(
            kubectl, ns, ["missing-secret", "missing-ca", "no-provider", "broken-provider"], timeout=120
        )
        for name in ("missing-secret", "missing-ca", "no-provider", "broken-provider"):
            check = lab.check_device(device, ns, name, RULES)
            assert check.ok, str(check)


def test_malformed_provider_lists_every_error(kubectl: Any, operator: OperatorProcess) -> None:
    for doc, expected in ((broken_semantics(), EXPECTED_SEMANTIC), (broken_structure(), EXPECTED_STRUCTURE)):
        name = doc["metadata"]["name"] + "-only"
        doc = {**doc, "metadata": {"name": name}}
        lab.apply(kubectl, [doc])

        def reported(name: str = name) -> dict[str, Any] | None:
            obj = get_json(kubectl, "vnfprovider", name)
            st = obj.get("status") or {}
            return obj if st.get("errors") and condition(obj, "Ready").get("status") == "False" else None

        obj = lab.wait_until(reported, timeout=60, what=f"VnfProvider {name} marked invalid")
        errors = obj["status"]["errors"]
        assert condition(obj, "Stalled")["status"] == "True"
        assert condition(obj, "Ready")["reason"] == "InvalidDictionary"
        # Every problem the loader finds in the stored object is listed, with its path. (The
        # apiserver returns map keys sorted, hence the stored spec rather than `doc`.)
        reference = load_entry(name, obj["metadata"]["generation"], obj["spec"]).problems
        assert [(e["path"], e["message"]) for e in errors] == [(p.path, p.message) for p in reference]
        for path, text in expected:
            assert any(e["path"] == path and text in e["message"] for e in errors), (path, text, errors)


def test_wrong_key_in_the_secret_is_reported_precisely(
    kubectl: Any, ns: str, operator: OperatorProcess
) -> None:
    with lab.Device("wrong-key") as device:
        # `apikey` instead of `api_key`: the value must never show up in the message either.
        wrong_key = objects.secret(ns, "fw-api", {"apikey": device.api_key, "api_secret": device.api_secret})
        device.reset_stats()
        lab.apply(
            kubectl,
            [
                wrong_key,
                lab.secret_objects(ns, "fw", device)[1],
                lab.appliance_object(ns, "fw", device, RULES),
            ],
        )
        got = lab.wait_until(
            lambda: (lambda o: o if o and _stopped(o) else None)(lab.appliances(kubectl, ns).get("fw")),
            timeout=60,
            what="the appliance to report Ready=False",
        )
        ready = condition(got, "Ready")
        assert device.total_requests() == 0, device.request_log()[:20]
        assert lab.leaked_in_namespace(kubectl, ns, operator.output()) == 0
        assert ready.get("reason") == "SecretKeyMissing", ready
        assert "spec.credentialsSecretRef: Secret has no key 'api_key'" in str(ready.get("message")), ready
        assert condition(got, "Stalled").get("status") == "True"
