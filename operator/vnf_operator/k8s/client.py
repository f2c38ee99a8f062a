"""A thin async Kubernetes API client over aiohttp.

The operator needs a handful of calls (read Secrets and providers, patch status, post events,
create owned Secrets); the official client costs far more memory than that is worth at a
thousand appliances. Credentials come from the same sources kopf uses: in-cluster service
account, or a kubeconfig (token or client certificate).
"""

from __future__ import annotations

import asyncio
import base64
import json as _json
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from vnf_operator.core.errors import VnfError

GROUP = "vnf.operators.dev"
VERSION = "v1alpha1"
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeError(VnfError):
    """A Kubernetes API call failed."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


class NotFound(KubeError):
    """The object does not exist."""


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None = None
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    insecure: bool = False


def _b64(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None


def _read(path: str | None, base: Path) -> bytes | None:
    if not path:
        return None
    p = Path(path)
    return (p if p.is_absolute() else base / p).read_bytes()


def load_credentials(kubeconfig: str | None = None) -> Credentials:
    """In-cluster credentials when running in a pod, else the kubeconfig's current context."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if not path and (SA_DIR / "token").exists():
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        return Credentials(
            server=f"https://{host}:{port}",
            token=(SA_DIR / "token").read_text().strip(),
            ca_pem=(SA_DIR / "ca.crt").read_bytes(),
        )
    cfg_path = Path(path or Path.home() / ".kube" / "config")
    cfg = yaml.safe_load(cfg_path.read_text())
    ctx_name = cfg.get("current-context")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    base = cfg_path.parent
    return Credentials(
        server=cluster["server"],
        token=user.get("token"),
        ca_pem=_b64(cluster.get("certificate-authority-data"))
        or _read(cluster.get("certificate-authority"), base),
        cert_pem=_b64(user.get("client-certificate-data")) or _read(user.get("client-certificate"), base),
        key_pem=_b64(user.get("client-key-data")) or _read(user.get("client-key"), base),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )


def _ssl_context(creds: Credentials) -> ssl.SSLContext | bool:
    if creds.insecure:
        return False
    ctx = ssl.create_default_context(cadata=creds.ca_pem.decode() if creds.ca_pem else None)
    if creds.cert_pem and creds.key_pem:
        # ssl can only load a client key pair from files.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
            cert.write_bytes(creds.cert_pem)
            key.write_bytes(creds.key_pem)
            key.chmod(0o600)
            ctx.load_cert_chain(cert, key)
    return ctx


def decode_secret_data(obj: Mapping[str, Any]) -> dict[str, str]:
    """A Secret object's `data`, decoded. Values are secrets: never log them."""
    data = obj.get("data") or {}
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}


class KubeClient:
    """The calls the operator makes, nothing more.

    On aiohttp rather than httpx: these calls are a large share of the operator's CPU on a big fleet
    (status patches, events, finalizers), and aiohttp costs a fraction of httpx per request.
    """

    def __init__(self, creds: Credentials, *, timeout: float = 30.0) -> None:
        self._base = creds.server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {creds.token}"} if creds.token else {}
        self._ssl = _ssl_context(creds)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.requests = 0

    def _client(self) -> aiohttp.ClientSession:
        """One session per event loop (the CLI may run several loops one after the other)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64),
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        decode: bool = True,
    ) -> Any:
        """One request; the answer's JSON (`decode=False`: None, for answers nobody reads)."""
        self.requests += 1
        headers = {"Content-Type": content_type} if json is not None else {}
        # Compact, like kubectl: ControllerRevision `data` is immutable and compared byte for byte.
        data = None if json is None else _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            async with self._client().request(
                method, self._base + path, data=data, headers=headers, params=params
            ) as resp:
                status, content = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:  # apiserver down or restarting
            raise KubeError(f"{method} {path}: {type(exc).__name__}: {exc}", reason="Unavailable") from None
        if status >= 400:
            text = content.decode("utf-8", "replace")
            try:
                body = _json.loads(content)
                msg, reason = body.get("message", text), body.get("reason", "")
            except (ValueError, AttributeError):
                msg, reason = text, ""
            cls = NotFound if status == 404 else KubeError
            raise cls(f"{method} {path}: {status} {msg}", status=status, reason=reason)
        return _json.loads(content) if content and decode else None

    # --- custom objects
    @staticmethod
    def _cr_path(plural: str, name: str | None = None, namespace: str | None = None) -> str:
        ns = f"/namespaces/{namespace}" if namespace else ""
        tail = f"/{name}" if name else ""
        return f"/apis/{GROUP}/{VERSION}{ns}/{plural}{tail}"

    async def get_custom(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", self._cr_path(plural, name, namespace))
        return result

    async def list_custom(
        self, plural: str, namespace: str | None = None, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self._call("GET", self._cr_path(plural, None, namespace), params=params)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def patch_custom_status(
        self, plural: str, name: str, namespace: str | None, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch the status. The updated object the apiserver answers with is not decoded:
        the watch delivers it anyway (a thousand status patches' worth of JSON on a large fleet)."""
        path = self._cr_path(plural, name, namespace) + "/status"
        await self._call(
            "PATCH", path, json={"status": status}, content_type="application/merge-patch+json", decode=False
        )

    async def patch_custom(
        self, plural: str, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "PATCH",
            self._cr_path(plural, name, namespace),
            json=patch,
            content_type="application/merge-patch+json",
        )
        return result

    # --- core objects
    async def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, decoded. Values are secrets: never log them."""
        obj = await self._call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        return decode_secret_data(obj)

    async def apply_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Create or replace an operator-owned Secret (server-side apply)."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        if owner:
            body["metadata"]["ownerReferences"] = [dict(owner)]
        await self._call(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/secrets/{name}",
            json=body,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": "vnf-operator", "force": "true"},
        )

    async def list_secrets(self, namespace: str, *, label_selector: str = "") -> list[dict[str, Any]]:
        """Secrets as the API returns them (data still base64): for listing operator-owned ones."""
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self._call("GET", f"/api/v1/namespaces/{namespace}/secrets", params=params)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def delete_secret(self, namespace: str, name: str) -> None:
        try:
            await self._call("DELETE", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except NotFound:
            return

    # --- apps/v1 ControllerRevisions (spec history of appliances)
    @staticmethod
    def _cr_rev_path(namespace: str, name: str | None = None) -> str:
        tail = f"/{name}" if name else ""
        return f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions{tail}"

    async def list_controller_revisions(
        self, namespace: str, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self._call("GET", self._cr_rev_path(namespace), params=params)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def get_controller_revision(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", self._cr_rev_path(namespace, name))
        return result

    async def create_controller_revision(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", self._cr_rev_path(namespace), json=body)
        return result

    async def patch_controller_revision(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "PATCH",
            self._cr_rev_path(namespace, name),
            json=patch,
            content_type="application/merge-patch+json",
        )
        return result

    async def delete_controller_revision(self, namespace: str, name: str) -> None:
        try:
            await self._call("DELETE", self._cr_rev_path(namespace, name))
        except NotFound:
            return

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> None:
        await self._call("POST", f"/api/v1/namespaces/{namespace}/events", json=body)

    async def delete_custom(self, plural: str, name: str, namespace: str | None = None) -> None:
        try:
            await self._call("DELETE", self._cr_path(plural, name, namespace))
        except NotFound:
            return
