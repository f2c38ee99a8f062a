"""vnfctl exec: run one operation of a dictionary against a live appliance and show the result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
import yaml

from vnf_operator.cli.common import dump, load, output_option, provider_argument, read_mapping_arg
from vnf_operator.cli.live import (
    CliError,
    Live,
    build_target,
    live_options,
    masked,
    print_fields,
    print_items,
    run_command,
)
from vnf_operator.core.errors import ItemValidationError, Problem
from vnf_operator.core.itemschema import validate_item, validate_params
from vnf_operator.core.model import FieldSpec, FieldType, Operation, Service
from vnf_operator.core.parse import Parsed
from vnf_operator.core.render import find_operation

ITEM_OPS = ("create", "update", "delete")


@click.command("exec", short_help="Run one operation against a live appliance.")
@provider_argument
@click.option("--service", "-s", required=True, help="Service name.")
@click.option(
    "--op",
    "operation",
    required=True,
    help="Operation: list, create, update, delete, commit or a custom one.",
)
@click.option(
    "--item",
    metavar="ITEM.yaml",
    help="The item (create/update; delete takes it to find the device's item). Inline YAML works too.",
)
@click.option("--id", "item_id", help="Device id of the item (update/delete).")
@click.option(
    "--actual",
    metavar="ACTUAL.yaml",
    help="The device's item as `list` shows it (update/delete); default: looked up with `list`.",
)
@click.option(
    "--param", "params", multiple=True, metavar="K=V", help="Parameter of the operation (repeatable)."
)
@click.option(
    "--commit", is_flag=True, help="Run the service's commit after a successful create/update/delete."
)
@live_options()
@output_option(("table", "json", "yaml"), "table")
def command(
    file: str,
    service: str,
    operation: str,
    item: str | None,
    item_id: str | None,
    actual: str | None,
    params: tuple[str, ...],
    commit: bool,
    output: str,
    **opts: Any,
) -> None:
    """Run one operation of dictionary FILE against a live appliance and print its parsed result.

    `list` prints the items as a table; `create` prints the new item's id; any operation's
    captured values are shown. Exits 1 when the device rejects the operation.

    \b
    Examples:
      vnfctl exec providers/opnsense.yaml --host fw1 --credentials c.yaml --ca ca.pem -s firewall_rules --op list
      vnfctl exec providers/opnsense.yaml --host fw1 --credentials c.yaml --ca ca.pem -s firewall_rules \\
          --op create --item rule.yaml --commit
      vnfctl exec providers/opnsense.yaml ... -s firewall_rules --op delete --id 4f1c...
    """
    lp = load(file)
    d = lp.dictionary
    if service not in d.services:
        known = ", ".join(d.services) or "none"
        raise click.BadParameter(
            f"{service}: the dictionary has no such service (known: {known})", param_hint="--service"
        )
    svc = d.services[service]
    op, _ = find_operation(lp, service, operation)
    if commit and (svc.commit is None or operation not in ITEM_OPS):
        raise click.UsageError(
            "--commit needs a create, update or delete of a service that has a commit step"
        )
    item_data = read_mapping_arg(item, "item")
    actual_data = read_mapping_arg(actual, "actual")
    if item_data is not None and operation in ("create", "update"):
        item_data = validate_item(svc, item_data, where="item")
    if operation == "create" and item_data is None:
        raise click.UsageError("--op create needs --item")
    if operation == "update" and item_data is None:
        raise click.UsageError("--op update needs --item")
    if params and not op.parameters:
        raise click.BadParameter(f"{service}/{operation} declares no parameters", param_hint="--param")
    param_data = _params(op, key_value_pairs(params))
    target = build_target(lp, opts)

    async def work(live: Live, step: Any) -> tuple[Parsed, dict[str, Any] | None, str | None]:
        found, the_id = actual_data, item_id
        if operation in ("update", "delete") and found is None:
            step(f"looking up the item on {target.host}")
            found = await _lookup(live, service, svc, item_data, item_id)
        if found is not None and the_id is None and svc.identity is not None and svc.identity.id:
            value = found.get(svc.identity.id)
            the_id = None if value is None else str(value)
        if operation in ("update", "delete") and the_id is None and found is None and not op.parameters:
            raise CliError(f"{service}/{operation}: give --id, --item or --actual to say which item")
        ctx: dict[str, Any] = {"params": param_data}
        if operation in ITEM_OPS:
            ctx["item"] = item_data if item_data is not None else found
            if found is not None:
                ctx["actual"] = found
            if the_id is not None:
                ctx["id"] = the_id
        elif item_data is not None:
            ctx["item"] = item_data
        if operation not in ITEM_OPS and item_id is not None:
            ctx["id"] = item_id
        step(f"{service}/{operation} on {target.host}")
        parsed = await live.session.run(service, operation, **ctx)
        if commit:
            step(f"{service}/commit on {target.host}")
            await live.session.run(service, "commit")
        return parsed, found, the_id

    parsed, _, the_id = run_command(lp, target, work, what=f"{service}/{operation}")
    data = masked(_result(parsed, the_id if operation in ("update", "delete") else None), target.masker)
    title = f"Response of VNF operation: {service}/{operation}"
    if output != "table":
        click.echo(dump(data, output))
        return
    singles = {k: data[k] for k in ("id", "absent") if k in data}
    items: list[dict[str, Any]] = data["items"]
    if operation == "list" or len(items) > 1:
        print_items(title, items)
    elif items or singles or data.get("captured"):
        print_fields(title, {**singles, **(items[0] if items else {}), **data.get("captured", {})})
    else:
        click.echo(f"✓ {service}/{operation}: ok")
    if commit:
        click.echo(f"✓ {service}/commit: ok")


def key_value_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        out[key.strip()] = val
    return out


def _coerce(spec: FieldSpec | None, value: str) -> Any:
    """A `--param` value as the parameter's type wants it (strings stay strings)."""
    kind = spec.type if spec is not None else FieldType.STRING
    try:
        if kind == FieldType.INTEGER:
            return int(value)
        if kind == FieldType.NUMBER:
            return float(value)
        if kind == FieldType.BOOLEAN and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind not in (FieldType.INTEGER, FieldType.NUMBER, FieldType.BOOLEAN, FieldType.STRING) and value[
            :1
        ] in (
            "[",
            "{",
        ):
            return yaml.safe_load(value)
    except (ValueError, yaml.YAMLError):
        return value  # validation names the problem
    return value


def _params(op: Operation, raw: Mapping[str, str]) -> dict[str, Any]:
    values = {k: _coerce(op.parameters.get(k), v) for k, v in raw.items()}
    if op.parameters:
        return validate_params(op, values, where="param")
    return values


async def _lookup(
    live: Live, service: str, svc: Service, item: Mapping[str, Any] | None, item_id: str | None
) -> dict[str, Any] | None:
    """The device's item, by id or by natural key, when the service can list."""
    from vnf_operator.core import diff
    from vnf_operator.engine.sync import comparison_rules, list_items

    if "list" not in svc.operations or svc.identity is None:
        return None
    rules = comparison_rules(svc, service)
    if item_id is None and item is None:
        return None
    items = await list_items(live.session, service)
    if item_id is not None and rules.id_field:
        for it in items:
            if str(it.get(rules.id_field)) == item_id:
                return it
        return None
    assert item is not None
    key = diff.item_key(item, rules)
    if key is None:
        raise ItemValidationError(
            [
                Problem(
                    "item", f"needs the key field(s) {', '.join(rules.key_fields)} to find the device's item"
                )
            ]
        )
    matches = [it for it in items if diff.item_key(it, rules) == key]
    if len(matches) > 1:
        raise CliError(
            f"{service}: {len(matches)} items on the device have the key {diff.format_key(key, rules)}; give --id"
        )
    if not matches:
        raise CliError(f"{service}: no item with the key {diff.format_key(key, rules)} on the device")
    return matches[0]


def _result(p: Parsed, the_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": p.ok}
    if p.absent:
        out["absent"] = True
    if p.id is not None or the_id is not None:
        out["id"] = p.id if p.id is not None else the_id
    if p.captured:
        out["captured"] = p.captured
    out["items"] = p.items
    return out
