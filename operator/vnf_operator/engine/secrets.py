"""Credentials come only from Kubernetes Secrets in the appliance's namespace.

The resolver reads the Secrets an appliance names, checks that every credential the provider
requires is there, and never lets a value reach a message: errors name the Secret and key only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from vnf_operator.core.errors import VnfError
from vnf_operator.core.model import ProviderDictionary

OUTPUTS_SUFFIX = "-bootstrap-outputs"


class SecretsError(VnfError):
    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class SecretReader(Protocol):
    async def get_secret(self, namespace: str, name: str) -> dict[str, str]: ...

    async def apply_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None: ...


@dataclass
class Credentials:
    values: dict[str, str] = field(default_factory=dict)
    """Credential name → value (credentials and, where declared, bootstrap credentials)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Other Secret material: CA bundle, known hosts, jump-host keys, broker token."""
    fingerprint: str = ""
    """A hash of every value: changes when a Secret rotates (never the values themselves)."""


class SecretResolver:
    def __init__(self, reader: SecretReader) -> None:
        self.reader = reader

    async def _read(self, namespace: str, name: str, what: str) -> dict[str, str]:
        from vnf_operator.k8s.client import NotFound

        try:
            return await self.reader.get_secret(namespace, name)
        except NotFound:
            raise SecretsError("SecretNotFound", f"{what}: Secret {namespace}/{name} not found") from None

    async def _key(
        self, namespace: str, ref: Mapping[str, Any] | None, what: str, default_key: str
    ) -> str | None:
        if not ref or not ref.get("name"):
            return None
        data = await self._read(namespace, ref["name"], what)
        key = ref.get("key") or default_key
        if key not in data:
            raise SecretsError(
                "SecretKeyMissing", f"{what}: Secret {namespace}/{ref['name']} has no key {key!r}"
            )
        return data[key]

    async def credentials(
        self,
        namespace: str,
        spec: Mapping[str, Any],
        dictionary: ProviderDictionary,
        appliance: str | None = None,
    ) -> Credentials:
        """`appliance`: its name, so outputs of an earlier bootstrap count as present credentials."""
        import hashlib

        creds = Credentials()
        main_ref = spec.get("credentialsSecretRef") or {}
        boot_ref = spec.get("bootstrapCredentialsSecretRef") or {}
        main = await self._read(namespace, main_ref["name"], "spec.credentialsSecretRef") if main_ref else {}
        boot = (
            await self._read(namespace, boot_ref["name"], "spec.bootstrapCredentialsSecretRef")
            if boot_ref
            else {}
        )
        missing: list[str] = []
        # A credential the bootstrap creates (e.g. a generated API key) may be absent until then.
        produced: set[str] = set()
        if dictionary.bootstrap is not None:
            outputs = {o for st in dictionary.bootstrap.steps for o in st.outputs}
            if boot_ref:  # ...but only when the appliance gives bootstrap credentials to run it with
                produced = outputs
            elif appliance is not None and outputs:  # or an earlier bootstrap already produced them
                produced = outputs & set(await self.bootstrap_outputs(namespace, appliance))
        for cname, decl in dictionary.credentials.items():
            source, label = (
                (boot, "spec.bootstrapCredentialsSecretRef")
                if decl.bootstrap
                else (main, "spec.credentialsSecretRef")
            )
            if cname in source:
                creds.values[cname] = source[cname]
            elif decl.required and not decl.bootstrap and cname not in produced:
                missing.append(
                    f"{label}: Secret has no key {cname!r} ({decl.description or 'required by the provider'})"
                )
        if missing:
            raise SecretsError("SecretKeyMissing", "; ".join(missing))
        tls = spec.get("tls") or {}
        ca = await self._key(namespace, tls.get("caSecretRef"), "spec.tls.caSecretRef", "ca.crt")
        if ca:
            creds.extra["ca.crt"] = ca
        ssh = spec.get("ssh") or {}
        kh = await self._key(
            namespace, ssh.get("knownHostsSecretRef"), "spec.ssh.knownHostsSecretRef", "known_hosts"
        )
        if kh:
            creds.extra["known_hosts"] = kh
        reach = spec.get("reach") or {}
        jump = reach.get("jumpHost") or {}
        for field_name, key in (
            ("passwordSecretKeyRef", "jump.password"),
            ("privateKeySecretKeyRef", "jump.private_key"),
            ("knownHostsSecretKeyRef", "jump.known_hosts"),
        ):
            value = await self._key(
                namespace, jump.get(field_name), f"spec.reach.jumpHost.{field_name}", "value"
            )
            if value:
                creds.extra[key] = value
        broker = reach.get("broker") or {}
        token = await self._key(
            namespace, broker.get("tokenSecretKeyRef"), "spec.reach.broker.tokenSecretKeyRef", "token"
        )
        if token:
            creds.extra["broker.token"] = token
        bca = await self._key(namespace, broker.get("caSecretRef"), "spec.reach.broker.caSecretRef", "ca.crt")
        if bca:
            creds.extra["broker.ca"] = bca
        digest = hashlib.sha256()
        for k in sorted(creds.values):
            digest.update(f"{k}\0{creds.values[k]}\0".encode())
        for k in sorted(creds.extra):
            digest.update(f"{k}\0{creds.extra[k]}\0".encode())
        creds.fingerprint = digest.hexdigest()[:16]
        return creds

    async def bootstrap_outputs(self, namespace: str, appliance: str) -> dict[str, str]:
        from vnf_operator.k8s.client import NotFound

        try:
            return dict(await self.reader.get_secret(namespace, appliance + OUTPUTS_SUFFIX))
        except NotFound:
            return {}

    async def store_outputs(self, body: Mapping[str, Any], outputs: Mapping[str, str]) -> str:
        meta = body["metadata"]
        name: str = meta["name"] + OUTPUTS_SUFFIX
        owner = {
            "apiVersion": body.get("apiVersion", "vnf.operators.dev/v1alpha1"),
            "kind": "VnfAppliance",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": False,
        }
        await self.reader.apply_secret(
            meta["namespace"],
            name,
            outputs,
            owner=owner,
            labels={"vnf.operators.dev/appliance": meta["name"]},
        )
        return name
