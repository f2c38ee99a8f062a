"""Credentials come only from Kubernetes Secrets in the appliance's namespace.

The resolver reads the Secrets an appliance names, checks that every credential the provider
requires is there, and never lets a value reach a message: errors name the Secret and key only.
With a `SecretCache` (fed by the operator's Secret watch) a reconcile reads no Secret from the
apiserver at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


class SecretSource(Protocol):
    async def get_secret(self, namespace: str, name: str) -> dict[str, str]: ...


class SecretCache:
    """Secret data kept from the watch, so that a reconcile reads no Secret from the apiserver.

    Holds only Secrets `wanted(namespace, name)` accepts (those appliances use: the least data in
    memory); the watch keeps them current (`observe`). A miss reads through and keeps the answer,
    "not found" included, until the watch says otherwise. Only correct while a watch on Secrets
    runs: without one (no list/watch RBAC) use no cache.
    """

    def __init__(self, reader: SecretSource, wanted: Callable[[str, str], bool]) -> None:
        self.reader = reader
        self.wanted = wanted
        self._data: dict[tuple[str, str], dict[str, str] | None] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def tracks(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._data or self.wanted(namespace, name)

    def observe(self, namespace: str, name: str, data: Mapping[str, str] | None) -> bool:
        """A watch event (`data` None: deleted). True when a Secret in use changed or appeared."""
        key = (namespace, name)
        if key not in self._data and not self.wanted(namespace, name):
            return False
        new = None if data is None else dict(data)
        changed = key not in self._data or self._data[key] != new
        self._data[key] = new
        return changed

    def discard_unwanted(self, namespace: str, names: set[str]) -> None:
        """Drop what no appliance uses any more (after an appliance went away)."""
        for name in names:
            if not self.wanted(namespace, name):
                self._data.pop((namespace, name), None)

    def invalidate(self, namespace: str, name: str) -> None:
        """The operator wrote this Secret: read it again rather than trust an older event."""
        self._data.pop((namespace, name), None)

    async def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        from vnf_operator.k8s.client import NotFound

        key = (namespace, name)
        if key in self._data:
            self.hits += 1
            data = self._data[key]
            if data is None:
                raise NotFound(f"Secret {namespace}/{name} not found", status=404)
            return dict(data)
        self.misses += 1
        try:
            fresh = await self.reader.get_secret(namespace, name)
        except NotFound:
            if self.wanted(namespace, name):
                self._data.setdefault(key, None)  # a watch event that came meanwhile wins
            raise
        if self.wanted(namespace, name):
            self._data.setdefault(key, dict(fresh))
        return fresh


@dataclass
class Credentials:
    values: dict[str, str] = field(default_factory=dict)
    """Credential name → value (credentials and, where declared, bootstrap credentials)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Other Secret material: CA bundle, known hosts, jump-host keys, broker token."""
    fingerprint: str = ""
    """A hash of every value: changes when a Secret rotates (never the values themselves)."""


class SecretResolver:
    def __init__(self, reader: SecretReader, cache: SecretCache | None = None) -> None:
        self.reader = reader
        self.cache = cache
        self._source: SecretSource = cache if cache is not None else reader

    async def _read(self, namespace: str, name: str, what: str) -> dict[str, str]:
        from vnf_operator.k8s.client import NotFound

        try:
            return await self._source.get_secret(namespace, name)
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
            return dict(await self._source.get_secret(namespace, appliance + OUTPUTS_SUFFIX))
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
        if self.cache is not None:
            self.cache.invalidate(meta["namespace"], name)
        return name
