"""Injection, end to end: no crafted field of a firewall rule reaches the device as a command or path.

Every string field of the OPNsense provider's `firewall_rules` is tried with every payload below
(newline, CR/LF, `;`, `|`, `&&`, backticks, `$()`, control characters, an overlong value, `../`,
template syntax, JSON-breaking quotes, another appliance's ownership marker). Each combination is
its own VnfAppliance, applied for real and reconciled by the operator. Each must end either

- refused by item validation: Ready=False / InvalidSpec naming `items[0].<field>`, and nothing
  sent to the device (those appliances share a device whose request count must stay zero), or
- sent, safely encoded (a JSON string in the request body): the device stores the exact value, or
  refuses it with its own validation message, reported as such.

Across all devices, every request path must be one the dictionary declares (an allowlist of
regular expressions), so no value ever changed a URL. Template syntax is data, never evaluated:
`{{ credentials.api_secret }}` is stored literally and the secret appears nowhere.
A VnfOperation whose path parameter tries `../` is refused before any request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.operator_runner import OperatorProcess, condition, get_json
from tests.integration.reliability import lab

from vnf_operator.core.errors import ItemValidationError
from vnf_operator.core.itemschema import validate_items
from vnf_operator.core.model import FieldType
from vnf_operator.engine.providers import load_entry

pytestmark = pytest.mark.integration

PAYLOADS: dict[str, str] = {
    "newline": "x\nset system reboot",
    "crlf": "x\r\nX-Injected: yes",
    "semicolon": "x; reboot",
    "pipe": "x | sh -c id",
    "andand": "x && reboot",
    "backticks": "`reboot`",
    "dollar": "$(reboot)",
    "control": "x\x00\x07\x1b[2J",
    "overlong": "A" * 5000,
    "dotdot": "../../core/firmware/reboot",
    "dotdot-encoded": "..%2F..%2Fcore%2Ffirmware%2Freboot",
    "template": "{{ credentials.api_secret }}",
    "jinja-stmt": "{% for x in range(10**9) %}x{% endfor %}",
    "json-quote": 'x", "action": "pass',
    "marker-spoof": "vnf:other-ns/other-app x",
}
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ALLOWED_PATHS = [
    re.compile(p)
    for p in (
        r"^/api/core/firmware/status$",
        r"^/api/firewall/filter/(searchRule|addRule|apply)$",
        rf"^/api/firewall/filter/(setRule|delRule|getRule)/{UUID}$",
        rf"^/api/firewall/filter/moveRuleBefore/{UUID}/{UUID}$",
    )
]
BASE_RULE = {
    "description": "inj",
    "interface": "wan",
    "action": "pass",
    "protocol": "TCP",
    "destination_port": "80",
}
PROGRESS = {"Progressing", ""}


def firewall_service() -> Any:
    entry = load_entry("opnsense", 1, lab.opnsense_provider()["spec"])
    assert entry.loaded is not None
    return entry.loaded.dictionary.services["firewall_rules"]


def string_fields() -> list[str]:
    """Every field of firewall_rules that takes text (enums, patterns, CIDRs and ports included)."""
    scalar_non_text = {
        FieldType.BOOLEAN,
        FieldType.INTEGER,
        FieldType.NUMBER,
        FieldType.LIST,
        FieldType.OBJECT,
    }
    return sorted(n for n, spec in firewall_service().fields.items() if spec.type not in scalar_non_text)


Case = tuple[str, dict[str, Any]]
"""(the field tried, the rule)"""


def classify() -> tuple[dict[str, Case], dict[str, Case]]:
    """(rejected, accepted): appliance name -> case, by what item validation says."""
    service = firewall_service()
    rejected: dict[str, Case] = {}
    accepted: dict[str, Case] = {}
    for field in string_fields():
        for label, payload in PAYLOADS.items():
            rule = {**BASE_RULE, field: payload}
            if field != "description":
                rule["description"] = f"inj-{field}-{label}"
            name = f"{field.replace('_', '-')}-{label}"[:50]
            try:
                validate_items(service, [rule], where="x")
            except ItemValidationError:
                rejected[f"rej-{name}"] = (field, rule)
                continue
            accepted[name] = (field, rule)
    return rejected, accepted


@pytest.fixture
def ns(kubectl: Any, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    yield namespace
    lab.purge(kubectl, namespace)


def test_no_field_reaches_the_device_as_a_command_or_a_path(
    kubectl: Any, ns: str, operator: OperatorProcess
) -> None:
    rejected, accepted = classify()
    accepted_descriptions = {n: r for n, (f, r) in accepted.items() if f == "description"}
    accepted_other = {n: c for n, c in accepted.items() if c[0] != "description"}
    assert len(rejected) + len(accepted) == len(string_fields()) * len(PAYLOADS)
    assert "rej-description-newline" in rejected and "description-semicolon" in accepted

    with lab.Device("refused") as refused, lab.Device("text") as text, lab.Device("misc") as misc:
        objs: list[dict[str, Any]] = []
        for device, label in ((refused, "refused"), (text, "text"), (misc, "misc")):
            objs += lab.secret_objects(ns, label, device)
        refs: dict[str, dict[str, Any]] = {
            "refused": {
                "credentialsSecretRef": {"name": "refused-api"},
                "tls": {"caSecretRef": {"name": "refused-ca"}},
            },
            "text": {
                "credentialsSecretRef": {"name": "text-api"},
                "tls": {"caSecretRef": {"name": "text-ca"}},
            },
            "misc": {
                "credentialsSecretRef": {"name": "misc-api"},
                "tls": {"caSecretRef": {"name": "misc-ca"}},
            },
        }
        for name, (_, rule) in rejected.items():
            objs.append(lab.appliance_object(ns, name, refused, [rule], **refs["refused"]))
        # Every description that validates, as the items of ONE appliance: the device stores them all.
        objs.append(
            lab.appliance_object(
                ns, "descriptions", text, list(accepted_descriptions.values()), **refs["text"]
            )
        )
        for name, (_, rule) in accepted_other.items():
            objs.append(lab.appliance_object(ns, name, misc, [rule], **refs["misc"]))
        # A VnfOperation whose path parameter tries to climb out of /firewall/filter/getRule/.
        objs.append(
            {
                "apiVersion": lab.API,
                "kind": "VnfOperation",
                "metadata": {"name": "get-traversal", "namespace": ns},
                "spec": {
                    "applianceRef": {"name": "descriptions"},
                    "service": "firewall_rules",
                    "operation": "get",
                    "parameters": {"uuid": "../../core/firmware/reboot"},
                },
            }
        )
        for device in (refused, text, misc):
            device.reset_stats()
        lab.apply(kubectl, objs)

        names = [*rejected, "descriptions", *accepted_other]

        def settled() -> dict[str, dict[str, Any]] | None:
            got = lab.appliances(kubectl, ns)
            for n in names:
                obj = got.get(n)
                if obj is None or (obj.get("status") or {}).get("observedGeneration") != 1:
                    return None
                if condition(obj, "Ready").get("reason", "") in PROGRESS:
                    return None
            return got if lab.is_ready(got["descriptions"]) else None

        got = lab.wait_until(
            settled,
            timeout=150,
            what="every injection appliance to settle",
            describe=lambda: lab.summary(
                {k: v for k, v in lab.appliances(kubectl, ns).items() if not lab.is_ready(v)}
            ),
        )
        problems: list[str] = []
        # 1. Refused by validation, with the field's path, and the device never contacted.
        for name, (field, _) in rejected.items():
            ready = condition(got[name], "Ready")
            if ready.get("reason") != "InvalidSpec" or f"items[0].{field}" not in str(ready.get("message")):
                problems.append(f"{name}: {ready.get('reason')}: {ready.get('message')}")
            if condition(got[name], "Stalled").get("status") != "True":
                problems.append(f"{name}: not Stalled")
        assert refused.total_requests() == 0, refused.request_log()[:10]

        # 2. Accepted descriptions: stored verbatim after our marker (template syntax not evaluated).
        stored = {
            r["description"] for r in lab.ours(text.state()["config"]["filter_rules"], ns, "descriptions")
        }
        for name, rule in accepted_descriptions.items():
            if rule["description"] not in stored:
                problems.append(
                    f"{name}: {rule['description']!r} not stored verbatim (stored: {sorted(stored)[:5]})"
                )
        assert text.api_secret not in str(text.state()), "a template in a field was evaluated"
        check = lab.check_device(text, ns, "descriptions", list(accepted_descriptions.values()))
        if not check.ok:
            problems.append(str(check))

        # 3. Other accepted values: the device stored exactly the value, or refused it visibly.
        misc_rows = misc.state()["config"]["filter_rules"]
        for name, (field, rule) in accepted_other.items():
            mine = lab.ours(misc_rows, ns, name)
            ready = condition(got[name], "Ready")
            if mine:
                if [str(r.get(field)) for r in mine] != [rule[field]]:
                    problems.append(f"{name}: stored {[r.get(field) for r in mine]!r}, sent {rule[field]!r}")
            elif ready.get("status") != "False" or "device rejected the operation" not in str(
                ready.get("message")
            ):
                problems.append(f"{name}: not stored and not reported as refused: {ready}")

        # 4. No request ever went to a path the dictionary does not declare.
        for device in (text, misc):
            for r in device.request_log():
                if not any(p.match(r["path"]) for p in ALLOWED_PATHS):
                    problems.append(f"{device.label}: unexpected request {r['method']} {r['path']!r}")
        assert not problems, "\n".join(problems[:40])

        # 5. The traversal in a path parameter is refused before any request.
        op = lab.wait_until(
            lambda: (
                lambda o: o if (o.get("status") or {}).get("phase") in ("Failed", "Succeeded") else None
            )(get_json(kubectl, "vnfoperation", "get-traversal", "-n", ns)),
            timeout=60,
            what="the VnfOperation to finish",
        )
        assert op["status"]["phase"] == "Failed", op["status"]
        reasons = {c.get("reason") for c in op["status"].get("conditions") or []}
        assert "InvalidParameters" in reasons, op["status"]
        assert "spec.parameters.uuid" in str(op["status"].get("error")), op["status"]
        assert not any("getRule" in r["path"] for r in text.request_log())
    assert lab.leaked_in_namespace(kubectl, ns, operator.output()) == 0
