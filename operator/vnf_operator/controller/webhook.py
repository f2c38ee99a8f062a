"""Validating admission webhook: bad items and broken dictionaries fail at `kubectl apply` time.

The operator validates every desired item before it touches a device anyway (engine step 2), but
then the mistake only shows up later, in status. This webhook runs the same checks at admission,
so the apply itself fails with the precise problem::

    admission webhook "vnfappliances.vnf.operators.dev" denied the request:
    spec.services.firewall_rules.items[2].action: "allow" is not one of pass, block, reject

Two parts:

- a kopf- and aiohttp-independent core (`review`, `validate_appliance`, `validate_provider`) that
  turns an AdmissionReview v1 request into its response; unit-testable without sockets;
- `start_webhook_server()`, a small aiohttp HTTPS server (POST /validate, GET /healthz) the
  operator starts in its own event loop (see docs/security.md for wiring and certificates).

Rules (see docs/security.md, "Admission webhook", for the failure-policy trade-off):

- VnfAppliance CREATE, and UPDATE when the spec changed: the provider named in
  spec.providerRef is looked up; every service must exist in it and be reconcilable, and every
  item must satisfy the service's data schema (`core.itemschema.validate_items`). A provider that
  is unknown (not created yet, or not seen yet by this process) or invalid does not block the
  apply: the object is admitted with a warning and the operator reports the problem in status.
- VnfProvider CREATE, and UPDATE when the spec changed: the dictionary must load
  (`engine.providers.load_entry`); every problem is listed.
- Updates that leave the spec unchanged (finalizers, annotations, labels) and objects being
  deleted are always admitted: the webhook must never block kopf's own bookkeeping or the
  removal of a finalizer.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from vnf_operator.core.errors import ItemValidationError
from vnf_operator.core.itemschema import validate_items
from vnf_operator.engine.providers import ProviderCache, ProviderEntry, load_entry

log = logging.getLogger(__name__)

ProviderLookup = Callable[[str], ProviderEntry | None]
"""Provider name -> its loaded entry (None when this process does not know the provider)."""

GROUP = "vnf.operators.dev"
PATH = "/validate"
MAX_PROBLEMS = 20
"""At most this many problems in one denial message (the rest are counted)."""
MAX_MESSAGE = 4000
MAX_BODY = 4 * 1024 * 1024
"""AdmissionReview bodies carry the object twice (object, oldObject); objects are <= 1.5 MiB."""


@dataclass
class Verdict:
    allowed: bool
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def _join(problems: list[str]) -> str:
    shown = problems[:MAX_PROBLEMS]
    text = "; ".join(shown)
    if len(problems) > len(shown):
        text += f" (+{len(problems) - len(shown)} more)"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _spec_unchanged(request: Mapping[str, Any]) -> bool:
    if request.get("operation") != "UPDATE":
        return False
    new = (request.get("object") or {}).get("spec")
    old = (request.get("oldObject") or {}).get("spec")
    return bool(new == old)


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def validate_appliance(obj: Mapping[str, Any], lookup: ProviderLookup) -> Verdict:
    """The checks the engine runs before touching a device, minus everything that needs I/O."""
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        return Verdict(False, "spec: is not an object")
    pref = spec.get("providerRef") or {}
    pname = str(pref.get("name") or "") if isinstance(pref, Mapping) else ""
    services = spec.get("services") or {}
    if not isinstance(services, Mapping):
        return Verdict(False, "spec.services: is not an object")
    if not pname:
        return Verdict(False, "spec.providerRef.name: is required")
    entry = lookup(pname)
    if entry is None:
        return Verdict(
            True,
            warnings=[
                f"VnfProvider {pname!r} is not known yet: spec.services was not validated "
                "(the operator reports ProviderNotFound until it exists)"
            ],
        )
    if entry.loaded is None:
        return Verdict(
            True,
            warnings=[
                f"VnfProvider {pname!r} is invalid: spec.services was not validated "
                "(see the provider's status.errors)"
            ],
        )
    warnings: list[str] = []
    pinned = pref.get("version")
    if pinned and pinned != entry.version:
        warnings.append(
            f"spec.providerRef.version: pinned {pinned!r} but VnfProvider {pname!r} is {entry.version!r}"
        )
    dictionary = entry.loaded.dictionary
    problems: list[str] = []
    for sname, sspec in services.items():
        service = dictionary.services.get(sname)
        if service is None:
            known = ", ".join(sorted(dictionary.services)) or "none"
            problems.append(f"spec.services.{sname}: provider {pname} has no such service (it has: {known})")
            continue
        items = (sspec or {}).get("items") if isinstance(sspec, Mapping) else None
        if items is not None and not isinstance(items, list):
            problems.append(f"spec.services.{sname}.items: is not a list")
            continue
        try:
            validate_items(service, items or [], where=f"spec.services.{sname}.items")
        except ItemValidationError as exc:
            problems.extend(str(p) for p in exc.problems)
        if service.identity is None or "list" not in service.operations:
            problems.append(
                f"spec.services.{sname}: provider {pname} cannot reconcile this service (no list/identity)"
            )
    if problems:
        return Verdict(False, _join(problems), warnings)
    return Verdict(True, warnings=warnings)


def validate_provider(obj: Mapping[str, Any]) -> Verdict:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    entry = load_entry(name, int(meta.get("generation") or 0), obj.get("spec") or {})
    if entry.loaded is None:
        return Verdict(False, f"VnfProvider {name}: " + _join([str(p) for p in entry.problems]))
    return Verdict(True)


def decide(request: Mapping[str, Any], lookup: ProviderLookup) -> Verdict:
    """The verdict for one AdmissionReview request (never raises for odd input: it denies)."""
    if request.get("operation") not in ("CREATE", "UPDATE"):
        return Verdict(True)
    obj = request.get("object") or {}
    if not isinstance(obj, Mapping):
        return Verdict(False, "the request carries no object")
    if _deleting(obj) or _spec_unchanged(request):
        return Verdict(True)
    kind = (request.get("kind") or {}).get("kind") or obj.get("kind")
    group = (request.get("kind") or {}).get("group", GROUP)
    if group != GROUP:
        return Verdict(True)
    if kind == "VnfAppliance":
        return validate_appliance(obj, lookup)
    if kind == "VnfProvider":
        return validate_provider(obj)
    return Verdict(True)


def review(body: Mapping[str, Any], lookup: ProviderLookup) -> dict[str, Any]:
    """AdmissionReview v1 in, AdmissionReview v1 out. Validation bugs deny (fail closed)."""
    request = body.get("request")
    if body.get("kind") != "AdmissionReview" or not isinstance(request, Mapping) or "uid" not in request:
        raise ValueError("not an AdmissionReview v1 request")
    try:
        verdict = decide(request, lookup)
    except Exception as exc:  # a bug here must not admit what it could not check
        log.exception("admission review failed")
        verdict = Verdict(False, f"internal error while validating ({type(exc).__name__}); see operator logs")
    response: dict[str, Any] = {"uid": request["uid"], "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {"code": 422, "reason": "Invalid", "message": verdict.message}
    if verdict.warnings:
        # Warnings are shown by kubectl; keep them short, ASCII, and at most a few.
        response["warnings"] = [w[:200] for w in verdict.warnings[:5]]
    return {
        "apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }


def cache_lookup(bodies: Mapping[str, Mapping[str, Any]], entries: ProviderCache) -> ProviderLookup:
    """A lookup over the operator's caches that never changes them.

    `ProviderCache.resolve()` replaces the cached entry (and moves the old one into the rollout's
    history); only the provider reconciler should do that. So: the cached entry when it is current,
    else a private load of the body's generation (memoised per generation).
    """
    private: dict[str, ProviderEntry] = {}

    def lookup(name: str) -> ProviderEntry | None:
        body = bodies.get(name)
        if body is None:
            return None
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        cached = entries.get(name)
        if cached is not None and cached.generation == generation:
            return cached
        mine = private.get(name)
        if mine is None or mine.generation != generation:
            mine = load_entry(name, generation, body.get("spec") or {})
            private[name] = mine
        return mine

    return lookup


# ---------------------------------------------------------------------------------- server


def _server_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def make_app(lookup: ProviderLookup) -> web.Application:
    async def validate(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, Mapping):
                raise ValueError("body is not a JSON object")
            answer = review(body, lookup)
        except (ValueError, json.JSONDecodeError) as exc:
            return web.json_response({"error": f"bad AdmissionReview: {type(exc).__name__}"}, status=400)
        return web.json_response(answer)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, validate)
    app.router.add_get("/healthz", healthz)
    return app


async def start_webhook_server(
    host: str, port: int, cert: Path | str, key: Path | str, provider_lookup: ProviderLookup
) -> web.AppRunner:
    """Serve the webhook over HTTPS from the running event loop; stop with `await runner.cleanup()`.

    `port` 0 picks a free port (read it back from `runner.addresses`).
    """
    runner = web.AppRunner(make_app(provider_lookup), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=_server_context(cert, key)).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("admission webhook listening on https://%s:%d%s", host, webhook_port(runner), PATH)
    return runner


def webhook_port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


async def start_from_env(
    bodies: Mapping[str, Mapping[str, Any]], entries: ProviderCache, env: Mapping[str, str] | None = None
) -> web.AppRunner | None:
    """Start the webhook when `VNF_WEBHOOK_PORT` is set (the operator's startup handler calls this).

    `VNF_WEBHOOK_HOST` (default 0.0.0.0) and `VNF_WEBHOOK_CERT_DIR` (default
    /etc/vnf-operator/webhook, holding tls.crt and tls.key, e.g. a mounted kubernetes.io/tls Secret).
    """
    env = os.environ if env is None else env
    port = env.get("VNF_WEBHOOK_PORT")
    if not port:
        return None
    cert_dir = Path(env.get("VNF_WEBHOOK_CERT_DIR", "/etc/vnf-operator/webhook"))
    return await start_webhook_server(
        env.get("VNF_WEBHOOK_HOST", "0.0.0.0"),  # noqa: S104 - the Service reaches the pod's IP
        int(port),
        cert_dir / "tls.crt",
        cert_dir / "tls.key",
        cache_lookup(bodies, entries),
    )
