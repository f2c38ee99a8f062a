"""Helpers shared by vnfctl commands: reading YAML inputs, building a template context, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from vnf_operator.core.context import ApplianceInfo, TemplateContext, credential_placeholders
from vnf_operator.core.errors import ItemValidationError, Problem
from vnf_operator.core.loader import LoadedProvider, load_provider_file, parse_yaml
from vnf_operator.core.model import ProviderDictionary

F = TypeVar("F", bound=Callable[..., Any])


def read_yaml_arg(value: str, what: str) -> Any:
    """A YAML file path, `-` for stdin, or inline YAML/JSON (`{...}` / `[...]`)."""
    if value == "-":
        text, source = sys.stdin.read(), "<stdin>"
    elif value.lstrip().startswith(("{", "[")) and not Path(value).exists():
        text, source = value, f"--{what}"
    else:
        try:
            text, source = Path(value).read_text(encoding="utf-8"), value
        except OSError as e:
            raise click.BadParameter(
                f"cannot read {value}: {e.strerror or e}", param_hint=f"--{what}"
            ) from None
        except UnicodeDecodeError:
            raise click.BadParameter(f"{value} is not UTF-8 text", param_hint=f"--{what}") from None
    return parse_yaml(text, source=source, error=ItemValidationError)


def read_mapping_arg(value: str | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    data = read_yaml_arg(value, what)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ItemValidationError(
            [Problem(what, f"must be a mapping, not {type(data).__name__}")], source=value
        )
    return dict(data)


def key_values(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=f"--{what}")
        out[key.strip()] = val
    return out


def provider_argument(f: F) -> F:
    return click.argument("file", type=click.Path(dir_okay=False, path_type=str))(f)


def load(file: str) -> LoadedProvider:
    return load_provider_file(file)


def context_options(f: F) -> F:
    """Options describing the appliance and the values a render sees."""
    options = [
        click.option(
            "--name", "appliance_name", default="example", show_default=True, help="Appliance name."
        ),
        click.option("--namespace", default="default", show_default=True, help="Appliance namespace."),
        click.option("--host", default="192.0.2.1", show_default=True, help="Management host."),
        click.option(
            "--port", "ports", multiple=True, metavar="CONN=PORT", help="Port override per connection."
        ),
        click.option(
            "--vars", "vars_", multiple=True, metavar="K=V", help="Appliance variable (repeatable)."
        ),
        click.option(
            "--credentials",
            "credentials_file",
            metavar="FILE.yaml",
            help="Credential values (masked in the output); without it placeholders are shown.",
        ),
        click.option(
            "--context",
            "context_file",
            metavar="FILE.yaml",
            help="More context: items, creates, updates, deletes, before_id, after_id, steps, bootstrap, "
            "result.",
        ),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


_EXTRA = ("items", "creates", "updates", "deletes", "before_id", "after_id", "steps", "bootstrap", "result")


def build_context(
    d: ProviderDictionary,
    *,
    appliance_name: str,
    namespace: str,
    host: str,
    ports: tuple[str, ...],
    vars_: tuple[str, ...],
    credentials_file: str | None,
    context_file: str | None,
) -> TemplateContext:
    port_map: dict[str, int] = {}
    for k, v in key_values(ports, "port").items():
        if not v.isdigit() or not 1 <= int(v) <= 65535:
            raise click.BadParameter(f"{k}={v}: not a port", param_hint="--port")
        port_map[k] = int(v)
    creds = read_mapping_arg(credentials_file, "credentials")
    credentials = (
        {str(k): "" if v is None else str(v) for k, v in creds.items()}
        if creds is not None
        else credential_placeholders(d)
    )
    extra = read_mapping_arg(context_file, "context") or {}
    unknown = sorted(set(extra) - set(_EXTRA))
    if unknown:
        raise click.BadParameter(
            f"unknown keys {', '.join(unknown)} (known: {', '.join(_EXTRA)})", param_hint="--context"
        )
    return TemplateContext(
        appliance=ApplianceInfo(
            name=appliance_name,
            namespace=namespace,
            host=host,
            ports=port_map,
            vars=key_values(vars_, "vars"),
        ),
        credentials=credentials,
        **extra,
    )


def output_option(choices: tuple[str, ...], default: str) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format.",
    )


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
