"""vnfctl bootstrap: run a provider's day-0 bootstrap against a live appliance (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from vnf_operator.cli.common import dump, load, output_option, provider_argument
from vnf_operator.cli.live import Live, build_target, live_options, masked, print_table, run_command
from vnf_operator.core.secrets import MASK


@click.command("bootstrap", short_help="Run the day-0 bootstrap against a live appliance.")
@provider_argument
@click.option(
    "--force", is_flag=True, help="Run the steps even when the `neededWhen` checks say it is not needed."
)
@live_options(bootstrap=True)
@output_option(("text", "json", "yaml"), "text")
def command(file: str, force: bool, output: str, **opts: Any) -> None:
    """Run the bootstrap of dictionary FILE against a live appliance.

    Runs when the provider's `neededWhen` checks fail (or always with --force, or when the
    provider has none); steps whose `skipIf` holds are skipped, so running it again is safe.
    Outputs the steps capture (a generated API key) are saved to --outputs FILE (mode 0600) after
    every step and printed masked; later commands read them from the same --outputs FILE.
    Exits 1 when a step or the `ready` checks fail.

    \b
    Example:
      vnfctl bootstrap providers/opnsense.yaml --host fw1 --ca ca.pem \\
          --bootstrap-credentials day0.yaml --outputs fw1-outputs.yaml
    """
    from vnf_operator.engine.bootstrap import BootstrapOutcome, bootstrap_needed, run_bootstrap

    lp = load(file)
    boot = lp.dictionary.bootstrap
    if boot is None:
        click.echo(f"provider {lp.name} declares no bootstrap: nothing to do")
        return
    target = build_target(lp, opts)
    declared = [o for s in boot.steps for o in s.outputs]
    if declared and target.outputs_file is None:
        click.echo(
            f"vnfctl: warning: the bootstrap captures {', '.join(declared)}; without --outputs FILE they are "
            "not saved anywhere",
            err=True,
        )

    async def work(live: Live, step: Any) -> tuple[bool, str, BootstrapOutcome | None]:
        if not force:
            step("checking whether bootstrap is needed")
            needed, why = await bootstrap_needed(live.session, {})
            if not needed:
                return False, why, None
        else:
            why = "forced"
        # Connections that need an output (the operator's new API key) open once it exists.
        live.reader.on_store = lambda _data: live.refresh()
        step(f"bootstrapping {target.host}")
        outcome = await run_bootstrap(live.session, live.resolver, target.body, live.creds)
        return True, why, outcome

    ran, why, outcome = run_command(lp, target, work, what="bootstrap")
    outputs: Mapping[str, str] = outcome.outputs if outcome is not None else {}
    shown = {k: f"{MASK} ({len(v)} characters)" for k, v in sorted(outputs.items())}
    saved = str(target.outputs_file) if target.outputs_file is not None and outputs else None
    result: dict[str, Any] = {"ran": ran, "reason": why}
    if outcome is not None:
        result.update(
            ok=bool(outcome.step.ok),
            status=outcome.step.reason,
            message=outcome.step.message,
            steps=list(outcome.status.get("steps") or []),
        )
    else:
        result.update(ok=True, status="NotNeeded", message=why)
    result["outputs"] = shown
    if saved:
        result["outputsFile"] = saved
    data = masked(result, target.masker)
    if output != "text":
        click.echo(dump(data, output))
    else:
        if not ran:
            click.echo(f"✓ bootstrap not needed: {data['message']}")
        elif data["ok"]:
            steps = ", ".join(data["steps"]) or "none"
            click.echo(f"✓ {data['message']} (steps run: {steps})")
        else:
            click.echo(f"✗ {data['status']}: {data['message']}")
        if shown:
            print_table(
                "Bootstrap outputs", ["output", "value"], [[k, v] for k, v in data["outputs"].items()]
            )
            if saved:
                click.echo(f"outputs saved to {saved} (mode 0600); pass --outputs {saved} to later commands")
    if not data["ok"]:
        raise click.exceptions.Exit(1)
