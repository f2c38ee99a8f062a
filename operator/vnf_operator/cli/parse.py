"""vnfctl parse: read a captured device answer as an operation's `response` says, and show it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from vnf_operator.cli.common import dump, load, output_option, provider_argument, read_mapping_arg
from vnf_operator.core.model import SshConnection
from vnf_operator.core.parse import Parsed, parse_response
from vnf_operator.core.render import find_operation
from vnf_operator.core.rendered import RawResponse
from vnf_operator.core.secrets import SecretMasker


@click.command("parse")
@provider_argument
@click.option("--service", "-s", required=True, help="Service name.")
@click.option("--op", "operation", required=True, help="Operation name.")
@click.option(
    "--response",
    "response_file",
    required=True,
    metavar="CAPTURED",
    help="File holding the captured body (HTTP) or command output (CLI); `-` reads stdin.",
)
@click.option(
    "--status", type=int, default=None, help="HTTP status of the captured answer (HTTP ops; default 200)."
)
@click.option(
    "--credentials", "credentials_file", metavar="FILE.yaml", help="Secret values to mask in the output."
)
@output_option(("table", "json", "yaml"), "table")
def command(
    file: str,
    service: str,
    operation: str,
    response_file: str,
    status: int | None,
    credentials_file: str | None,
    output: str,
) -> None:
    """Parse a captured answer offline: items, id, captured values, or the device's error.

    Exits 1 when the answer means the operation failed.
    """
    lp = load(file)
    d = lp.dictionary
    op, where = find_operation(lp, service, operation)
    if response_file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(response_file).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise click.BadParameter(
                f"cannot read {response_file}: {e.strerror or e}", param_hint="--response"
            ) from None
    patterns: tuple[str, ...] = ()
    if op.cli is not None:
        name = d.connection_named(op.cli.connection, "ssh")
        conn = d.connections.get(name) if name else None
        if isinstance(conn, SshConnection):
            patterns = tuple(conn.error_patterns)
        raw = RawResponse(status=None, text=text, outputs=(text,))
    else:
        raw = RawResponse(status=200 if status is None else status, text=text)
    parsed = parse_response(
        op.response, raw, where=f"{where}.response", operation_kind=operation, error_patterns=patterns
    )
    creds = read_mapping_arg(credentials_file, "credentials") or {}
    masker = SecretMasker(str(v) for v in creds.values() if v is not None)
    data = _masked(_result(parsed), masker)
    if output != "table":
        click.echo(dump(data, output))
    else:
        _table(f"{service}/{operation}", data)
    if not parsed.ok:
        raise click.exceptions.Exit(1)


def _result(p: Parsed) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": p.ok}
    if p.error:
        out["error"] = p.error
    if p.absent:
        out["absent"] = True
    if p.id is not None:
        out["id"] = p.id
    if p.captured:
        out["captured"] = p.captured
    out["items"] = p.items
    return out


def _masked(value: Any, masker: SecretMasker) -> Any:
    if not masker:
        return value
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, dict):
        return {k: _masked(v, masker) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, masker) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else dump(value, "json")


def _table(title: str, data: dict[str, Any]) -> None:
    if not data["ok"]:
        extra = " (the item does not exist)" if data.get("absent") else ""
        click.echo(f"✗ Response of VNF operation {title}: failed{extra}: {data.get('error', '')}")
        return
    console = Console(soft_wrap=False, highlight=False)
    items: list[dict[str, Any]] = data["items"]
    singles = {k: v for k, v in data.items() if k in ("id", "absent")}
    if len(items) == 1 or (not items and (singles or data.get("captured"))):
        table = Table(title=f"Response of VNF operation: {title}", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        first = items[0] if items else {}
        for k, v in {**singles, **first, **data.get("captured", {})}.items():
            table.add_row(str(k), _cell(v))
        console.print(table)
        return
    columns: list[str] = []
    for it in items:
        columns += [k for k in it if k not in columns]
    table = Table(title=f"Response of VNF operation: {title} ({len(items)} item(s))")
    for c in columns:
        table.add_column(c, no_wrap=True)
    rows = [[_cell(it.get(c)) for c in columns] for it in items]
    for cells in rows:
        table.add_row(*cells)
    # Like `kubectl get -o wide`: never squeeze cells; a wide table makes long lines.
    needed = sum(max([len(c), *(len(r[i]) for r in rows)]) + 3 for i, c in enumerate(columns)) + 1
    console.width = max(console.width, needed)
    console.print(table)
