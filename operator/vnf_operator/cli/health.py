"""vnfctl health: run a provider's health checks against a live appliance, phase by phase."""

from __future__ import annotations

from typing import Any

import click

from vnf_operator.cli.common import dump, load, output_option, provider_argument
from vnf_operator.cli.live import Live, build_target, hint, live_options, masked, print_table, run_command


@click.command("health", short_help="Run the health checks against a live appliance.")
@provider_argument
@live_options()
@output_option(("table", "json", "yaml"), "table")
def command(file: str, output: str, **opts: Any) -> None:
    """Run the health checks of dictionary FILE against a live appliance.

    Phases run in order (network, api, service); the checks of one phase run together, and a
    failing phase stops the later ones (they are shown as skipped). Exits 0 when every check
    passed, 1 otherwise.

    \b
    Example:
      vnfctl health providers/opnsense.yaml --host fw1.example.net --credentials creds.yaml --ca ca.pem
    """
    from vnf_operator.engine.health import PHASES, HealthResult, run_health_checks

    lp = load(file)
    target = build_target(lp, opts)

    async def work(live: Live, step: Any) -> HealthResult:
        return await run_health_checks(live.session)

    result = run_command(lp, target, work, what="running health checks")
    checks: list[dict[str, Any]] = [c.status() for c in result.checks]
    ran = {c.name for c in result.checks}
    failed = result.failed
    for check in lp.dictionary.health_checks:
        if check.name not in ran:
            why = f"phase {failed.phase} failed" if failed is not None else "not run"
            checks.append({"name": check.name, "phase": check.phase, "status": "Skipped", "message": why})
    order = {p: i for i, p in enumerate(PHASES)}
    checks.sort(key=lambda c: order.get(str(c["phase"]), len(order)))
    for row in checks:
        row["message"] = hint(str(row.get("message", "")))
    data = masked(
        {"healthy": result.ok, "message": hint(result.message), "checks": checks},
        target.masker,
    )
    if output != "table":
        click.echo(dump(data, output))
    else:
        marks = {"Passed": "✓ Passed", "Failed": "✗ Failed", "Skipped": "- Skipped"}
        rows = [
            [
                str(c["name"]),
                str(c["phase"]),
                marks.get(str(c["status"]), str(c["status"])),
                f"{c['latencyMs']} ms" if "latencyMs" in c else "",
                str(c.get("message", "")),
            ]
            for c in data["checks"]
        ]
        title = f"Health of {target.host} (provider {lp.name} {lp.dictionary.info.version})"
        print_table(title, ["check", "phase", "status", "latency", "message"], rows)
        click.echo(f"{'✓ healthy' if result.ok else '✗ unhealthy'}: {data['message']}")
    if not result.ok:
        raise click.exceptions.Exit(1)
