"""On-demand operations (VnfOperation) and deletion cleanup, built on the same session machinery."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from vnf_operator.core.errors import ItemValidationError, VnfError
from vnf_operator.core.itemschema import validate_params
from vnf_operator.core.model import Policy
from vnf_operator.engine.appliance import service_order
from vnf_operator.engine.providers import ProviderEntry
from vnf_operator.engine.secrets import Credentials, SecretsError
from vnf_operator.engine.session import ApplianceRef, Session
from vnf_operator.engine.sync import sync_service

MAX_ROWS = 200
MAX_STATUS_BYTES = 256 * 1024


async def open_session(runtime: Any, appliance: Mapping[str, Any], entry: ProviderEntry) -> Session:
    assert entry.loaded is not None
    meta, spec = appliance["metadata"], appliance.get("spec") or {}
    dictionary = entry.loaded.dictionary
    creds = await runtime.secrets.credentials(meta["namespace"], spec, dictionary, meta["name"])
    mgmt = spec.get("management") or {}
    ref = ApplianceRef(
        name=meta["name"],
        namespace=meta["namespace"],
        host=mgmt.get("host", ""),
        ports=mgmt.get("ports") or {},
        vars=spec.get("vars") or {},
    )
    outputs = await runtime.secrets.bootstrap_outputs(meta["namespace"], meta["name"])
    merged = Credentials({**outputs, **creds.values}, creds.extra, creds.fingerprint)
    conns = await runtime.connections.get(appliance, dictionary, merged, ref)
    return Session(entry.loaded, ref, creds.values, conns, bootstrap_outputs=outputs)


def bounded_rows(items: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]], bool]:
    """Rows for status: at most MAX_ROWS and MAX_STATUS_BYTES, with the union of columns."""
    columns: list[str] = []
    for item in items:
        for k in item:
            if k not in columns:
                columns.append(k)
    rows: list[dict[str, Any]] = []
    size, truncated = 0, False
    for item in items:
        row = {
            k: (v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v))
            for k, v in item.items()
        }
        size += len(json.dumps(row))
        if len(rows) >= MAX_ROWS or size > MAX_STATUS_BYTES:
            truncated = True
            break
        rows.append(row)
    return columns, rows, truncated


def _conditions(body: Mapping[str, Any], *, ok: bool, reason: str, message: str) -> list[dict[str, Any]]:
    """kstatus-compatible: Ready=True when it succeeded; Stalled=True when it failed (it never retries)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    gen = int((body.get("metadata") or {}).get("generation") or 0)
    message = message[:1000]

    def cond(ctype: str, status: bool, msg: str) -> dict[str, Any]:
        return {
            "type": ctype,
            "status": "True" if status else "False",
            "reason": reason,
            "message": msg,
            "observedGeneration": gen,
            "lastTransitionTime": now,
        }

    return [
        cond("Ready", ok, message),
        cond("Reconciling", False, ""),
        cond("Stalled", not ok, "" if ok else message),
    ]


async def execute_operation(
    runtime: Any, body: Mapping[str, Any], appliance: Mapping[str, Any] | None, entry: ProviderEntry | None
) -> dict[str, Any]:
    spec = body.get("spec") or {}
    service, operation = spec.get("service", ""), spec.get("operation", "")
    appliance_name = (spec.get("applianceRef") or {}).get("name", "")

    def failed(reason: str, message: str) -> dict[str, Any]:
        return {
            "phase": "Failed",
            "error": message,
            "conditions": _conditions(body, ok=False, reason=reason, message=message),
        }

    if appliance is None:
        return failed(
            "ApplianceNotFound", f"spec.applianceRef.name: VnfAppliance {appliance_name!r} not found"
        )
    if entry is None or entry.loaded is None:
        return failed("ProviderNotReady", "the appliance's provider is missing or invalid")
    services = entry.loaded.dictionary.services
    if service not in services:
        return failed("UnknownService", f"spec.service: provider has no service {service!r}")
    svc = services[service]
    if operation not in svc.operations and not (operation == "commit" and svc.commit):
        known = ", ".join(sorted(svc.operations))
        return failed(
            "UnknownOperation", f"spec.operation: service {service} has no operation {operation!r} ({known})"
        )
    params = spec.get("parameters") or {}
    try:
        op = svc.operations.get(operation)
        if op is not None and op.parameters:
            params = validate_params(op, params, where="spec.parameters")
        session = await open_session(runtime, appliance, entry)
        extra: dict[str, Any] = {"params": params}
        if operation in ("create", "update", "delete"):
            extra["item"] = params.get("item", params)
            if "id" in params:
                extra["id"] = params["id"]
        parsed = await session.run(service, operation, **extra)
    except ItemValidationError as exc:
        return failed("InvalidParameters", "; ".join(str(p) for p in exc.problems))
    except SecretsError as exc:
        return failed(exc.reason, str(exc))
    except VnfError as exc:
        return failed("OperationFailed", str(exc))
    items = list(parsed.items) or ([dict(parsed.captured)] if parsed.captured else [])
    if not items and isinstance(parsed.data, dict):
        items = [parsed.data]
    columns, rows, truncated = bounded_rows(items)
    return {
        "phase": "Succeeded",
        "columns": columns,
        "rows": rows,
        "rowCount": len(items),
        "truncated": truncated,
        "conditions": _conditions(body, ok=True, reason="Succeeded", message=f"{len(items)} row(s)"),
    }


async def finalize_appliance(
    runtime: Any, body: Mapping[str, Any], entry: ProviderEntry | None
) -> str | None:
    """Delete every item this operator manages on the device, then commit. None on success.

    Each service is synced to an empty desired list under the `replaced` policy (which deletes only
    managed items), so deletion uses the same batches, transactions, commit and verification as
    any sync; dependants go first (BGP neighbours before the interfaces they use)."""
    if entry is None or entry.loaded is None:
        return "provider missing or invalid: cannot remove managed items"
    status = body.get("status") or {}
    recorded = status.get("services") or {}
    services = entry.loaded.dictionary.services
    names = [n for n in recorded if n in services and "delete" in services[n].operations]
    try:
        session = await open_session(runtime, body, entry)
        for sname in reversed(service_order(entry, names)):
            result = await sync_service(
                session,
                sname,
                [],
                policy=Policy.REPLACED,
                managed_keys=(recorded.get(sname) or {}).get("managedKeys") or [],
            )
            if result.remaining:
                return f"{sname}: managed items left after deleting: {'; '.join(result.remaining)}"
    except (VnfError, SecretsError) as exc:
        return str(exc)
    return None
