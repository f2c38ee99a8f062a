"""vnfctl render: print the exact HTTP request or CLI lines an operation produces (secrets masked)."""

from __future__ import annotations

from typing import Any

import click

from vnf_operator.cli.common import (
    build_context,
    context_options,
    dump,
    key_values,
    load,
    output_option,
    provider_argument,
    read_mapping_arg,
)
from vnf_operator.core.context import TemplateContext
from vnf_operator.core.errors import DictionaryError, Problem
from vnf_operator.core.itemschema import validate_item, validate_params
from vnf_operator.core.loader import LoadedProvider
from vnf_operator.core.render import (
    begin_placeholders,
    describe,
    display_masker,
    find_operation,
    format_text,
    health_check_paths,
    render_bootstrap_step,
    render_connection,
    render_health_check,
    render_operation,
    with_begin,
)
from vnf_operator.core.rendered import RenderedOperation


@click.command("render")
@provider_argument
@click.option("--service", "-s", help="Service name.")
@click.option(
    "--op",
    "operation",
    help="Operation name (list, create, ..., a custom one, commit, abort, or begin[N] for a begin step).",
)
@click.option("--check", help="Render a health check instead (by name).")
@click.option("--step", help="Render a bootstrap step instead (by name).")
@click.option(
    "--item", metavar="ITEM.yaml", help="Desired item (validated; defaults applied). Inline YAML works too."
)
@click.option("--actual", metavar="ACTUAL.yaml", help="The device's item (update/delete).")
@click.option("--id", "item_id", help="Device id of the item (default: the actual item's identity.id field).")
@click.option("--params", metavar="PARAMS.yaml", help="Parameters of a custom operation.")
@click.option(
    "--begin",
    "begin",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value the service's `begin` captured (`begin.NAME`, repeatable); without it `<begin.NAME>`.",
)
@context_options
@output_option(("text", "json", "yaml"), "text")
def command(
    file: str,
    service: str | None,
    operation: str | None,
    check: str | None,
    step: str | None,
    item: str | None,
    actual: str | None,
    item_id: str | None,
    params: str | None,
    begin: tuple[str, ...],
    output: str,
    **ctx_opts: Any,
) -> None:
    """Render one operation of a dictionary offline and print it.

    Example: vnfctl render providers/opnsense.yaml --service firewall_rules --op create --item rule.yaml
    """
    lp = load(file)
    d = lp.dictionary
    ctx = build_context(d, **ctx_opts)
    chosen = [x for x in (operation, check, step) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --op (with --service), --check or --step")
    op: RenderedOperation | None
    if operation:
        if not service:
            raise click.UsageError("--op needs --service")
        ctx = with_begin(ctx, {**begin_placeholders(lp, service), **key_values(begin, "begin")})
        op = _render_op(lp, service, operation, ctx, item, actual, item_id, params)
    elif check:
        op = _render_check(lp, check, ctx)
    else:
        assert step is not None
        op = render_bootstrap_step(lp, step, ctx)
    if op is None:
        click.echo(f"TCP probe (health check {check}): no request to render")
        return
    conn = render_connection(lp, op.connection, ctx)
    data = describe(op, conn, display_masker(ctx, [conn]))
    click.echo(format_text(data) if output == "text" else dump(data, output))


def _render_op(
    lp: LoadedProvider,
    service: str,
    operation: str,
    ctx: TemplateContext,
    item: str | None,
    actual: str | None,
    item_id: str | None,
    params: str | None,
) -> RenderedOperation:
    op, _ = find_operation(lp, service, operation)
    svc = lp.dictionary.services[service]
    item_data = read_mapping_arg(item, "item")
    actual_data = read_mapping_arg(actual, "actual")
    params_data = read_mapping_arg(params, "params")
    if item_data is not None:
        item_data = validate_item(svc, item_data, where="item")
    if item_id is None and actual_data is not None and svc.identity is not None and svc.identity.id:
        v = actual_data.get(svc.identity.id)
        item_id = None if v is None else str(v)
    if op.parameters or params_data is not None:
        params_data = validate_params(op, params_data, where="params")
    ctx = ctx.for_item(item_data, actual=actual_data, id=item_id)
    if params_data is not None:
        ctx = ctx.replace(params=params_data)
    return render_operation(lp, service, operation, ctx)


def _render_check(lp: LoadedProvider, name: str, ctx: TemplateContext) -> RenderedOperation | None:
    checks = list(health_check_paths(lp))
    b = lp.dictionary.bootstrap
    if b is not None:
        prefix = f"{lp.path_prefix}." if lp.path_prefix else ""
        checks += [(c, f"{prefix}bootstrap.neededWhen[{i}]") for i, c in enumerate(b.needed_when)]
        checks += [(c, f"{prefix}bootstrap.ready[{i}]") for i, c in enumerate(b.ready)]
    for c, where in checks:
        if c.name == name:
            return render_health_check(lp, c, ctx, where=where)
    known = ", ".join(dict.fromkeys(c.name for c, _ in checks)) or "none"
    raise DictionaryError(
        [Problem("healthChecks", f"no health check `{name}` (known: {known})")], source=lp.source
    )
