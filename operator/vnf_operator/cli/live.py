"""What the live-device commands (health, bootstrap, exec) share.

The command line describes one appliance the way a VnfAppliance does: `build_target` turns the
options into a VnfAppliance-shaped body whose Secret references point at the files given
(`--credentials`, `--ca`, `--known-hosts`, ...) or at a Kubernetes Secret (`--secret NS/NAME`).
`live_session` resolves them with the engine's own `SecretResolver` and `ConnectionFactory`, so a
device sees exactly what the operator would send.

Secrets never reach the terminal: every value read from a credentials file, a Secret, a key or
token file, and every bootstrap output, is masked in the output, in error messages and in log
lines (`-vv`). Errors are one line (`-v` adds detail, never a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click
import yaml
from rich.console import Console
from rich.table import Table

from vnf_operator.cli.common import dump, key_values
from vnf_operator.core.errors import (
    Problem,
    ProblemsError,
    TransportError,
    VnfError,
)
from vnf_operator.core.loader import LoadedProvider
from vnf_operator.core.model import SshConnection
from vnf_operator.core.secrets import SecretMasker

if TYPE_CHECKING:
    from vnf_operator.engine.connections import ConnectionFactory
    from vnf_operator.engine.secrets import Credentials, SecretReader, SecretResolver
    from vnf_operator.engine.session import Session

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

DEFAULT_NAME = "vnfctl"
UID = "00000000-0000-0000-0000-00000000cafe"
"""metadata.uid of the appliance body (the engine wants one for the outputs' owner reference)."""

# Reserved names of the Secrets the files stand in for. A Kubernetes Secret name cannot hold a
# colon, so these never collide with a real one.
CREDENTIALS = "file:credentials"
BOOTSTRAP = "file:bootstrap-credentials"
CA = "file:ca"
KNOWN_HOSTS = "file:known-hosts"
JUMP = "file:jump-host"
BROKER = "file:broker"


class CliError(VnfError):
    """A failure of a live command: the first line is shown, the rest only with -v."""


# --------------------------------------------------------------------------- options


def live_options(*, bootstrap: bool = False) -> Callable[[F], F]:
    """Options describing the appliance to reach and how to reach it."""

    def decorate(f: F) -> F:
        options = [
            click.option("--host", required=True, help="Management address of the appliance."),
            click.option(
                "--port",
                "ports",
                multiple=True,
                metavar="CONN=PORT",
                help="Port of one connection of the dictionary (repeatable); a bare PORT applies to every "
                "connection not named.",
            ),
            click.option(
                "--name",
                "appliance_name",
                default=DEFAULT_NAME,
                show_default=True,
                help="Appliance name the templates see (ownership markers use it).",
            ),
            click.option(
                "--namespace", default=None, help="Appliance namespace (default: the --secret's, or default)."
            ),
            click.option(
                "--vars", "vars_", multiple=True, metavar="K=V", help="Appliance variable (repeatable)."
            ),
            click.option(
                "--credentials",
                "credentials_file",
                metavar="FILE.yaml",
                help="Credential values: a YAML mapping credential name -> value.",
            ),
            click.option(
                "--secret",
                metavar="NS/NAME",
                help="Read the credentials from this Kubernetes Secret (current kubeconfig context).",
            ),
            click.option(
                "--kubeconfig",
                metavar="FILE",
                help="Kubeconfig for --secret (default: $KUBECONFIG, ~/.kube/config).",
            ),
            click.option(
                "--outputs",
                "outputs_file",
                metavar="FILE.yaml",
                help="Bootstrap outputs: read when present (they stand in for missing credentials); "
                "`vnfctl bootstrap` writes them (mode 0600).",
            ),
            click.option(
                "--ca",
                "ca_file",
                metavar="FILE.pem",
                help="CA bundle the appliance's certificate must chain to.",
            ),
            click.option(
                "--insecure", is_flag=True, help="Do not verify the appliance's TLS certificate (labs only)."
            ),
            click.option(
                "--known-hosts",
                "known_hosts_file",
                metavar="FILE",
                help="OpenSSH known_hosts lines for the appliance.",
            ),
            click.option(
                "--trust-on-first-use",
                is_flag=True,
                help="Accept the appliance's SSH host key on first sight (prints it for pinning).",
            ),
            click.option(
                "--jump-host",
                metavar="USER@HOST[:PORT]",
                help="Reach the appliance through this SSH bastion.",
            ),
            click.option(
                "--jump-key", "jump_key_file", metavar="FILE", help="OpenSSH private key for the bastion."
            ),
            click.option(
                "--jump-password-file", metavar="FILE", help="File holding the bastion password (first line)."
            ),
            click.option(
                "--jump-known-hosts", "jump_known_hosts_file", metavar="FILE", help="Host key of the bastion."
            ),
            click.option("--proxy", metavar="URL", help="Reach the appliance through this HTTP proxy."),
            click.option("--broker", metavar="URL", help="Relay every request through this vnf-broker."),
            click.option(
                "--broker-token-file", metavar="FILE", help="Bearer token of the broker (first line)."
            ),
            click.option(
                "--broker-ca", "broker_ca_file", metavar="FILE.pem", help="CA bundle of the broker."
            ),
            click.option(
                "--retries",
                type=click.IntRange(0, 20),
                default=None,
                help="Retries of transient failures (default: the dictionary's limits).",
            ),
        ]
        if bootstrap:
            options.insert(
                6,
                click.option(
                    "--bootstrap-credentials",
                    "bootstrap_credentials_file",
                    metavar="FILE.yaml",
                    help="Day-0 credential values (the provider's `bootstrap: true` credentials).",
                ),
            )
        for opt in reversed(options):
            f = opt(f)
        return f

    return decorate


# --------------------------------------------------------------------------- reading files


def _read_text(path: str, option: str, *, first_line: bool = False) -> str:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror or e}", param_hint=option) from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path} is not UTF-8 text", param_hint=option) from None
    if first_line:
        text = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not text:
            raise click.BadParameter(f"{path} is empty", param_hint=option)
    return text


def read_values(path: str, option: str) -> dict[str, str]:
    """A YAML mapping of names to values (a credentials file); the values are secrets."""
    text = _read_text(path, option)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        # Never echo the YAML error's snippet: it may quote a secret.
        raise click.BadParameter(f"{path}: not valid YAML{where}", param_hint=option) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise click.BadParameter(f"{path}: must be a mapping of name: value", param_hint=option)
    out: dict[str, str] = {}
    for k, v in data.items():
        if isinstance(v, Mapping | list):
            raise click.BadParameter(f"{path}: {k}: must be a plain value", param_hint=option)
        out[str(k)] = "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return out


def write_private_yaml(path: Path, data: Mapping[str, str]) -> None:
    """Write `data` as YAML to `path`, mode 0600 from the start (atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("# vnfctl bootstrap outputs: secrets, keep this file private\n")
            yaml.safe_dump(dict(data), fh, sort_keys=True, allow_unicode=True, default_flow_style=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    path.chmod(0o600)


# --------------------------------------------------------------------------- the target


@dataclass
class Target:
    """One appliance as the command line describes it."""

    name: str
    namespace: str
    host: str
    ports: dict[str, int]
    body: dict[str, Any]
    local: dict[str, dict[str, str]]
    """Reserved Secret name -> data, read from files."""
    masker: SecretMasker
    labels: dict[str, str] = field(default_factory=dict)
    """Text of the engine's messages -> how the command line calls it."""
    secret: tuple[str, str] | None = None
    kubeconfig: str | None = None
    outputs_file: Path | None = None
    tofu: bool = False


def _ports(d_connections: Mapping[str, Any], pairs: tuple[str, ...]) -> dict[str, int]:
    default: int | None = None
    named: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            if default is not None:
                raise click.BadParameter("give at most one bare PORT", param_hint="--port")
            named_value = pair
            if not named_value.isdigit() or not 1 <= int(named_value) <= 65535:
                raise click.BadParameter(f"{pair}: not a port", param_hint="--port")
            default = int(named_value)
        else:
            named.update(key_values((pair,), "port"))
    out: dict[str, int] = {}
    for k, v in named.items():
        if k not in d_connections:
            known = ", ".join(d_connections) or "none"
            raise click.BadParameter(
                f"{k}: the dictionary has no such connection (known: {known})", param_hint="--port"
            )
        if not v.isdigit() or not 1 <= int(v) <= 65535:
            raise click.BadParameter(f"{k}={v}: not a port", param_hint="--port")
        out[k] = int(v)
    if default is not None:
        for name in d_connections:
            out.setdefault(name, default)
    return out


def _jump(value: str) -> tuple[str, str, int]:
    user, sep, hostport = value.rpartition("@")
    if not sep or not user or not hostport:
        raise click.BadParameter("expected USER@HOST[:PORT]", param_hint="--jump-host")
    port = 22
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise click.BadParameter("expected USER@[IPV6]:PORT", param_hint="--jump-host")
            port = int(rest[1:])
    elif hostport.count(":") == 1:
        host, _, p = hostport.partition(":")
        if not p.isdigit():
            raise click.BadParameter(f"{p!r} is not a port", param_hint="--jump-host")
        port = int(p)
    else:
        host = hostport
    if not host or not 1 <= port <= 65535:
        raise click.BadParameter("expected USER@HOST[:PORT]", param_hint="--jump-host")
    return user, host, port


_KEY_TYPES = ("ssh-", "ecdsa-", "sk-")


def pinned_key(text: str, host: str, port: int, source: str) -> str:
    """The bastion's public key line (`TYPE BASE64`) from known_hosts lines or a bare key line.

    The engine pins one key for the jump host; a line naming the host is preferred, else the
    first key of the file.
    """
    names = {host, f"[{host}]:{port}"} if port != 22 else {host, f"[{host}]:22"}
    first: str | None = None
    for raw in text.splitlines():
        fields = raw.split()
        if not fields or fields[0].startswith(("#", "@")):
            continue
        if fields[0].startswith(_KEY_TYPES) and len(fields) >= 2:
            key, hosts = " ".join(fields[:2]), ""
        elif len(fields) >= 3 and fields[1].startswith(_KEY_TYPES):
            key, hosts = " ".join(fields[1:3]), fields[0]
        else:
            continue
        if hosts and names & set(hosts.split(",")):
            return key
        first = first or key
    if first is None:
        raise click.BadParameter(f"{source}: no host key found", param_hint="--jump-known-hosts")
    return first


def _url(value: str, option: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise click.BadParameter(
            f"expected a {' or '.join(s + '://' for s in schemes)} URL", param_hint=option
        )
    return value


def build_target(lp: LoadedProvider, opts: Mapping[str, Any]) -> Target:
    """Check the options and turn them into a VnfAppliance-shaped body plus the local Secrets."""
    d = lp.dictionary
    masker = SecretMasker()
    local: dict[str, dict[str, str]] = {}
    labels: dict[str, str] = {}
    spec: dict[str, Any] = {}

    def exclusive(**names: str) -> None:
        given = [flag for key, flag in names.items() if opts.get(key)]
        if len(given) > 1:
            raise click.UsageError(f"{' and '.join(given)} are mutually exclusive")

    exclusive(credentials_file="--credentials", secret="--secret")
    exclusive(ca_file="--ca", insecure="--insecure")
    exclusive(known_hosts_file="--known-hosts", trust_on_first_use="--trust-on-first-use")
    exclusive(jump_host="--jump-host", proxy="--proxy", broker="--broker")
    exclusive(jump_key_file="--jump-key", jump_password_file="--jump-password-file")

    secret: tuple[str, str] | None = None
    if opts.get("secret"):
        ns, sep, sname = str(opts["secret"]).partition("/")
        if not sep or not ns or not sname or "/" in sname:
            raise click.BadParameter("expected NAMESPACE/NAME", param_hint="--secret")
        secret = (ns, sname)
        spec["credentialsSecretRef"] = {"name": sname}
        labels["spec.credentialsSecretRef: Secret has no key"] = (
            f"--secret {ns}/{sname}: the Secret has no key"
        )
        labels["spec.credentialsSecretRef"] = "--secret"
    namespace = opts.get("namespace") or (secret[0] if secret else "default")
    if secret and namespace != secret[0]:
        raise click.UsageError("--namespace must be the --secret's namespace (Secrets are read from it)")

    cred_file = opts.get("credentials_file")
    if cred_file:
        local[CREDENTIALS] = read_values(cred_file, "--credentials")
        masker.add(*local[CREDENTIALS].values())
        spec["credentialsSecretRef"] = {"name": CREDENTIALS}
        labels["spec.credentialsSecretRef: Secret has no key"] = f"--credentials {cred_file}: no key"
    elif not secret:
        labels["spec.credentialsSecretRef: Secret has no key"] = (
            "no credentials given (--credentials FILE or --secret NS/NAME): missing"
        )
    boot_file = opts.get("bootstrap_credentials_file")
    if boot_file:
        local[BOOTSTRAP] = read_values(boot_file, "--bootstrap-credentials")
        masker.add(*local[BOOTSTRAP].values())
        spec["bootstrapCredentialsSecretRef"] = {"name": BOOTSTRAP}
        labels["spec.bootstrapCredentialsSecretRef: Secret has no key"] = (
            f"--bootstrap-credentials {boot_file}: no key"
        )
    else:
        labels["spec.bootstrapCredentialsSecretRef: Secret has no key"] = (
            "no bootstrap credentials given (--bootstrap-credentials FILE): missing"
        )

    if opts.get("ca_file"):
        local[CA] = {"ca.crt": _read_text(opts["ca_file"], "--ca")}
        spec["tls"] = {"caSecretRef": {"name": CA}}
    elif opts.get("insecure"):
        spec["tls"] = {"insecureSkipVerify": True}
    if opts.get("known_hosts_file"):
        local[KNOWN_HOSTS] = {"known_hosts": _read_text(opts["known_hosts_file"], "--known-hosts")}
        spec["ssh"] = {"knownHostsSecretRef": {"name": KNOWN_HOSTS}}
    elif opts.get("trust_on_first_use"):
        spec["ssh"] = {"trustOnFirstUse": True}

    jump_only = [o for o in ("jump_key_file", "jump_password_file", "jump_known_hosts_file") if opts.get(o)]
    if jump_only and not opts.get("jump_host"):
        raise click.UsageError("--jump-key, --jump-password-file and --jump-known-hosts need --jump-host")
    if (opts.get("broker_token_file") or opts.get("broker_ca_file")) and not opts.get("broker"):
        raise click.UsageError("--broker-token-file and --broker-ca need --broker")
    if opts.get("jump_host"):
        user, jhost, jport = _jump(opts["jump_host"])
        jump: dict[str, Any] = {"host": jhost, "port": jport, "username": user}
        data: dict[str, str] = {}
        if opts.get("jump_key_file"):
            data["private_key"] = _read_text(opts["jump_key_file"], "--jump-key")
            jump["privateKeySecretKeyRef"] = {"name": JUMP, "key": "private_key"}
        if opts.get("jump_password_file"):
            data["password"] = _read_text(opts["jump_password_file"], "--jump-password-file", first_line=True)
            jump["passwordSecretKeyRef"] = {"name": JUMP, "key": "password"}
        if not ({"private_key", "password"} & set(data)):
            raise click.UsageError("--jump-host needs --jump-key or --jump-password-file")
        if not opts.get("jump_known_hosts_file"):
            raise click.UsageError("--jump-host needs --jump-known-hosts FILE (the bastion's host key)")
        kh_file = opts["jump_known_hosts_file"]
        data["known_hosts"] = pinned_key(_read_text(kh_file, "--jump-known-hosts"), jhost, jport, kh_file)
        jump["knownHostsSecretKeyRef"] = {"name": JUMP, "key": "known_hosts"}
        masker.add(*(v for k, v in data.items() if k != "known_hosts"))
        local[JUMP] = data
        spec["reach"] = {"mode": "jumpHost", "jumpHost": jump}
    elif opts.get("proxy"):
        url = _url(opts["proxy"], "--proxy", ("http", "https"))
        password = urlsplit(url).password
        if password:
            masker.add(password)
        spec["reach"] = {"mode": "proxy", "proxy": {"url": url}}
    elif opts.get("broker"):
        if not opts.get("broker_token_file"):
            raise click.UsageError("--broker needs --broker-token-file")
        token = _read_text(opts["broker_token_file"], "--broker-token-file", first_line=True)
        masker.add(token)
        local[BROKER] = {"token": token}
        broker: dict[str, Any] = {
            "url": _url(opts["broker"], "--broker", ("https", "http")),
            "tokenSecretKeyRef": {"name": BROKER, "key": "token"},
        }
        if opts.get("broker_ca_file"):
            local[BROKER]["ca.crt"] = _read_text(opts["broker_ca_file"], "--broker-ca")
            broker["caSecretRef"] = {"name": BROKER, "key": "ca.crt"}
        spec["reach"] = {"mode": "broker", "broker": broker}

    if opts.get("retries") is not None:
        spec["limits"] = {"maxRetries": int(opts["retries"])}
    ports = _ports(d.connections, tuple(opts.get("ports") or ()))
    spec["management"] = {"host": opts["host"], "ports": ports}
    spec["vars"] = key_values(tuple(opts.get("vars_") or ()), "vars")
    name = opts.get("appliance_name") or DEFAULT_NAME
    body = {
        "apiVersion": "vnf.operators.dev/v1alpha1",
        "kind": "VnfAppliance",
        "metadata": {"name": name, "namespace": namespace, "uid": UID},
        "spec": spec,
    }
    outputs = opts.get("outputs_file")
    return Target(
        name=name,
        namespace=namespace,
        host=opts["host"],
        ports=ports,
        body=body,
        local=local,
        masker=masker,
        labels=labels,
        secret=secret,
        kubeconfig=opts.get("kubeconfig"),
        outputs_file=Path(outputs) if outputs else None,
        tofu=bool(opts.get("trust_on_first_use")),
    )


# --------------------------------------------------------------------------- Secrets


class CliSecrets:
    """The engine's `SecretReader` for vnfctl: files under reserved names, the rest from Kubernetes.

    The appliance's bootstrap-outputs Secret is the `--outputs` file: read when it exists,
    written (mode 0600) when bootstrap stores outputs.
    """

    def __init__(self, target: Target, kube: SecretReader | None = None) -> None:
        self.target = target
        self.kube = kube
        self.on_store: Callable[[Mapping[str, str]], Awaitable[None]] | None = None

    def _outputs_name(self, name: str) -> bool:
        from vnf_operator.engine.secrets import OUTPUTS_SUFFIX

        return name == self.target.name + OUTPUTS_SUFFIX

    async def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        from vnf_operator.k8s.client import NotFound

        if name in self.target.local:
            return dict(self.target.local[name])
        if self._outputs_name(name):
            path = self.target.outputs_file
            if path is None or not path.exists():
                raise NotFound(f"no outputs file {path}")
            data = read_values(str(path), "--outputs")
            self.target.masker.add(*data.values())
            return data
        if self.kube is None:
            raise NotFound(f"Secret {namespace}/{name}: no Kubernetes access (give --secret)")
        data = await self.kube.get_secret(namespace, name)
        self.target.masker.add(*data.values())
        return data

    async def apply_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if not self._outputs_name(name):
            raise CliError(f"vnfctl does not write Secret {namespace}/{name}")
        self.target.masker.add(*data.values())
        if self.target.outputs_file is not None:
            write_private_yaml(self.target.outputs_file, data)
        if self.on_store is not None:
            await self.on_store(data)


class _KubeReader:
    """KubeClient.get_secret with transport failures turned into one clear line."""

    def __init__(self, kubeconfig: str | None) -> None:
        from vnf_operator.k8s.client import KubeClient, load_credentials

        try:
            creds = load_credentials(kubeconfig)
        except (OSError, KeyError, StopIteration, TypeError, ValueError, yaml.YAMLError) as e:
            where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise CliError(f"--secret: cannot load the kubeconfig ({where}): {type(e).__name__}") from None
        self.server = creds.server
        self.client = KubeClient(creds)

    async def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        import httpx

        try:
            return await self.client.get_secret(namespace, name)
        except httpx.HTTPError as e:
            raise CliError(
                f"--secret: cannot reach the Kubernetes API at {self.server}: {e or type(e).__name__}"
            ) from None

    async def apply_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        raise CliError("vnfctl never writes Secrets to the cluster")

    async def aclose(self) -> None:
        await self.client.aclose()


# --------------------------------------------------------------------------- sessions


@dataclass
class Live:
    """An open session to the appliance, and what was resolved to open it."""

    session: Session
    target: Target
    resolver: SecretResolver
    reader: CliSecrets
    creds: Credentials
    factory: ConnectionFactory
    provider: LoadedProvider

    async def refresh(self) -> None:
        """Rebuild the connections with the current bootstrap outputs standing in for credentials."""
        from vnf_operator.engine.secrets import Credentials as Creds

        values = {**self.session.bootstrap_outputs, **self.creds.values}
        creds = Creds(values=values, extra=self.creds.extra, fingerprint=self.creds.fingerprint)
        self.session.connections = await self.factory.get(
            self.target.body, self.provider.dictionary, creds, self.session.appliance
        )


@contextlib.asynccontextmanager
async def live_session(lp: LoadedProvider, target: Target) -> AsyncIterator[Live]:
    """Resolve credentials like the operator does, open the connections, and close them after."""
    from vnf_operator.engine.connections import ConnectionFactory
    from vnf_operator.engine.secrets import Credentials as Creds
    from vnf_operator.engine.secrets import SecretResolver, SecretsError
    from vnf_operator.engine.session import ApplianceRef, Session

    kube = _KubeReader(target.kubeconfig) if target.secret else None
    reader = CliSecrets(target, kube)
    factory = ConnectionFactory()
    session: Session | None = None
    try:
        resolver = SecretResolver(reader)
        spec = target.body["spec"]
        try:
            creds = await resolver.credentials(target.namespace, spec, lp.dictionary, target.name)
        except SecretsError as e:
            raise CliError(_relabel(str(e), target.labels)) from None
        target.masker.add(*creds.values.values())
        target.masker.add(
            *(v for k, v in creds.extra.items() if k not in ("ca.crt", "known_hosts", "broker.ca"))
        )
        outputs = await resolver.bootstrap_outputs(target.namespace, target.name)
        ref = ApplianceRef(
            name=target.name,
            namespace=target.namespace,
            host=target.host,
            ports=target.ports,
            vars=spec.get("vars") or {},
        )
        # Bootstrap outputs (a generated API key) stand in for credentials the source lacks.
        conn_creds = Creds(
            values={**outputs, **creds.values}, extra=creds.extra, fingerprint=creds.fingerprint
        )
        try:
            conns = await factory.get(target.body, lp.dictionary, conn_creds, ref)
        except ValueError as e:  # settings the transports refuse (a bad proxy URL, ...)
            raise CliError(target.masker(str(e))) from None
        session = Session(lp, ref, creds.values, conns, bootstrap_outputs=outputs)
        yield Live(session, target, resolver, reader, creds, factory, lp)
    finally:
        if session is not None:
            _report_host_keys(session, target)
        await factory.aclose()
        if kube is not None:
            await kube.aclose()


def _relabel(text: str, labels: Mapping[str, str]) -> str:
    """The engine's names for the Secrets replaced by the options; one label per message."""
    for old in sorted(labels, key=len, reverse=True):
        text = text.replace(old, labels[old])
    for new in set(labels.values()):
        i = text.find(new)
        if i >= 0:
            end = i + len(new)
            text = text[:end] + text[end:].replace(f"; {new}", ",")
    return text


def _report_host_keys(session: Session, target: Target) -> None:
    if not target.tofu:
        return
    for name, runner in session.connections.ssh.items():
        line = getattr(runner, "host_key_line", None)
        if not isinstance(line, str) or not line:
            continue
        conn = session.dictionary.connections.get(name)
        port = target.ports.get(name) or (conn.port if isinstance(conn, SshConnection) else 22)
        host = target.host if port == 22 else f"[{target.host}]:{port}"
        click.echo(
            f"vnfctl: to pin the host key of {name}, give --known-hosts FILE holding: {host} {line}", err=True
        )


# --------------------------------------------------------------------------- running


def run_live(target: Target, main: Coroutine[Any, Any, T]) -> T:
    """Run `main`; every failure becomes one masked line (detail only with -v)."""
    try:
        return asyncio.run(main)
    except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
        raise
    except CliError as e:
        raise CliError(target.masker(str(e))) from None
    except ProblemsError as e:
        problems = [Problem(p.path, target.masker(p.message)) for p in e.problems]
        raise type(e)(problems, source=e.source) from None
    except VnfError as e:
        raise CliError(describe_error(e, target.masker)) from None
    except OSError as e:
        raise CliError(
            target.masker(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        ) from None
    except Exception as e:  # the shell's last line of defence: one line, never a traceback
        raise CliError(
            target.masker(f"unexpected {type(e).__name__}: {e}") + "\n(this is a bug in vnfctl)"
        ) from None


def hint(message: str) -> str:
    """`message` and, for the usual mistakes, which option fixes it."""
    jump = "jump host" in message
    if "no host key to verify" in message or "SSH host key verification failed" in message:
        return f"{message} ({'check --jump-known-hosts' if jump else 'give --known-hosts FILE, or --trust-on-first-use'})"
    if "TLS certificate verify failed" in message:
        return f"{message} (give --ca FILE, or --insecure for a lab)"
    if "refused the credentials" in message:
        return (
            f"{message} ({'check --jump-key or --jump-password-file' if jump else 'check the credentials'})"
        )
    return message


def describe_error(e: VnfError, masker: SecretMasker) -> str:
    """One line (with a hint for the usual mistakes), then detail lines for -v."""
    first = hint(masker(str(e).splitlines()[0] if str(e) else type(e).__name__))
    detail = [f"error: {type(e).__name__}"]
    if isinstance(e, TransportError):
        for label, value in (
            ("appliance", e.appliance),
            ("connection", e.connection),
            ("operation", e.operation),
            ("status", e.status),
            ("retry after", e.retry_after),
        ):
            if value not in (None, ""):
                detail.append(f"{label}: {value}")
        detail.append(f"transient: {'yes' if e.transient else 'no'}")
    detail += [masker(line) for line in str(e).splitlines()[1:]]
    cause = e.__cause__ or e.__context__
    while cause is not None and len(detail) < 20:
        line = f"caused by {type(cause).__name__}: {masker(str(cause))[:300]}"
        if line != detail[-1]:
            detail.append(line)
        cause = cause.__cause__ or cause.__context__
    return "\n".join([first, *detail])


# --------------------------------------------------------------------------- progress and logs


@contextlib.contextmanager
def progress(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while a long step runs, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield lambda _text: None
        return
    console = Console(stderr=True)
    with console.status(text) as status:
        yield lambda new: status.update(new)


class _MaskingFilter(logging.Filter):
    def __init__(self, masker: SecretMasker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken record: logging reports it itself
            return True
        masked = self.masker(text)
        if masked != text:
            record.msg, record.args = masked, None
        if record.exc_info is not None:
            # Tracebacks are not for vnfctl users; the exception text is kept, masked.
            exc = record.exc_info[1]
            record.msg = f"{masked}: {type(exc).__name__}: {self.masker(str(exc))}" if exc else masked
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


class _Formatter(logging.Formatter):
    def __init__(self, verbose: int) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        origin = f"{record.name}: " if self.verbose >= 2 else ""
        return f"vnfctl: {record.levelname.lower()}: {origin}{record.getMessage()}"


class _CliHandler(logging.StreamHandler[Any]):
    """Marks vnfctl's handler so a second command in the same process replaces it."""


@contextlib.contextmanager
def cli_logging(verbose: int, masker: SecretMasker) -> Iterator[None]:
    """Log to stderr: warnings by default, INFO with -vv, DEBUG with -vvv; every line masked."""
    level = logging.WARNING if verbose < 2 else logging.INFO if verbose == 2 else logging.DEBUG
    handler = _CliHandler(sys.stderr)
    handler.setFormatter(_Formatter(verbose))
    handler.addFilter(_MaskingFilter(masker))
    root = logging.getLogger()
    old_level = root.level
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _CliHandler)]
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def verbosity() -> int:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return 0
    return int(ctx.find_root().params.get("verbose") or 0)


# --------------------------------------------------------------------------- output


def masked(value: Any, masker: SecretMasker) -> Any:
    """`value` with every secret replaced, at any depth."""
    if isinstance(value, str):
        return masker(value)
    if isinstance(value, Mapping):
        return {str(k): masked(v, masker) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, masker) for v in value]
    return value


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else dump(value, "json")


def print_table(title: str, columns: list[str], rows: list[list[str]], *, header: bool = True) -> None:
    """A table on stdout; never squeezed (a wide table makes long lines, like `kubectl -o wide`)."""
    console = Console(soft_wrap=False, highlight=False)
    table = Table(title=title, show_header=header, min_width=len(title))
    for i, c in enumerate(columns):
        table.add_column(c, no_wrap=True, style="bold" if not header and i == 0 else None)
    for r in rows:
        table.add_row(*r)
    needed = sum(max([len(c), *(len(r[i]) for r in rows)]) + 3 for i, c in enumerate(columns)) + 1
    console.width = max(console.width, needed, len(title) + 2)
    console.print(table)


def print_items(title: str, items: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for it in items:
        columns += [k for k in it if k not in columns]
    if not columns:
        click.echo(
            f"{title} ({len(items)} item(s)): no items"
            if not items
            else f"{title}: {len(items)} empty item(s)"
        )
        return
    rows = [[cell(it.get(c)) for c in columns] for it in items]
    print_table(f"{title} ({len(items)} item(s))", columns, rows)


def print_fields(title: str, values: Mapping[str, Any]) -> None:
    print_table(title, ["field", "value"], [[str(k), cell(v)] for k, v in values.items()], header=False)


def run_command(
    lp: LoadedProvider,
    target: Target,
    work: Callable[[Live, Callable[[str], None]], Awaitable[T]],
    *,
    what: str,
) -> T:
    """Open a session to the target, run `work` under a spinner, close everything; errors are one line."""

    async def main() -> T:
        with progress(f"{what}: connecting to {target.host}") as step:
            async with live_session(lp, target) as live:
                step(f"{what} on {target.host}")
                return await work(live, step)

    with cli_logging(verbosity(), target.masker):
        return run_live(target, main())
