"""vnfctl simulate: run a vendor appliance simulator in the foreground (until Ctrl-C)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vnf_operator.core.errors import VnfError


@click.command("simulate", short_help="Run a vendor appliance simulator in the foreground.")
@click.argument("vendor")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="HTTP(S) port; 0 picks a free one.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option(
    "--ssh-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="SSH port of CLI vendors; 0 picks a free one.",
)
@click.option("--tls", is_flag=True, help="Serve HTTPS with a generated CA (its PEM file is printed).")
@click.option(
    "--tls-dir", metavar="DIR", help="Where to write the CA PEM (default: a new temporary directory)."
)
@click.option(
    "--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Latency added to every request."
)
@click.option(
    "--error-rate", type=click.FloatRange(0, 1), default=0.0, help="Fraction of requests answered with a 5xx."
)
@click.option("--seed", type=int, default=None, help="Seed of the fault generator.")
@click.option(
    "--credentials-file",
    metavar="FILE.yaml",
    help="The device's login: YAML with username, password, api_key, api_secret (default: the vendor's).",
)
@click.option("--firmware", "firmware_version", metavar="VERSION", help="Firmware version to model.")
@click.option("--factory", is_flag=True, help="Boot in the factory-default state (e.g. no API key yet).")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    help="Multiplier of vendor timers.",
)
def command(
    vendor: str,
    port: int,
    host: str,
    ssh_port: int,
    tls: bool,
    tls_dir: str | None,
    latency_ms: float,
    error_rate: float,
    seed: int | None,
    credentials_file: str | None,
    firmware_version: str | None,
    factory: bool,
    time_scale: float,
) -> None:
    """Run the simulator of VENDOR in the foreground until interrupted (Ctrl-C).

    VENDOR is one of the simulated appliances (opnsense, pfsense, routeros, vyos, fortigate,
    iosxe; aliases such as mikrotik or cisco work too). The listening addresses, the CA file
    (--tls) and the admin endpoints are printed on start; credentials never are.

    Example: vnfctl simulate opnsense --port 8443 --tls --tls-dir /tmp/sim
    """
    import yaml

    from vnf_operator.testing.simulators import resolve_vendor, run_simulator

    try:
        resolve_vendor(vendor)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="VENDOR") from None
    try:
        if tls_dir:
            Path(tls_dir).mkdir(parents=True, exist_ok=True)
        run_simulator(
            vendor,
            port,
            host=host,
            tls=tls,
            latency_ms=latency_ms,
            credentials_file=credentials_file,
            ssh_port=ssh_port,
            firmware_version=firmware_version,
            factory_defaults=factory,
            error_rate=error_rate,
            seed=seed,
            time_scale=time_scale,
            tls_dir=tls_dir,
            announce=_announce,
        )
    except KeyboardInterrupt:
        return
    except OSError as e:
        raise VnfError(f"{vendor} simulator: cannot start: {e.strerror or e}") from None
    except yaml.YAMLError:
        # Never echo the parser's snippet: it may quote a password.
        raise VnfError(f"{vendor} simulator: {credentials_file}: not valid YAML") from None
    except ValueError as e:  # a bad credentials file or firmware version
        raise VnfError(f"{vendor} simulator: {e}") from None


def _announce(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()  # whoever reads a redirected stdout sees the addresses at once
