"""vnfctl validate FILE...: check dictionaries; one line per problem, exit 1 when any is invalid."""

from __future__ import annotations

import click

from vnf_operator.core.errors import DictionaryError
from vnf_operator.core.loader import load_provider_file


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@click.option("-q", "--quiet", is_flag=True, help="Print nothing for valid files.")
def command(files: tuple[str, ...], quiet: bool) -> None:
    """Validate provider dictionaries (VnfProvider manifests or bare dictionaries).

    Prints `FILE: path: message` for every problem of every file and exits 1 when any file is
    invalid; exits 0 when all are valid.
    """
    failed = False
    for f in files:
        try:
            lp = load_provider_file(f)
        except DictionaryError as e:
            failed = True
            for p in e.problems:
                click.echo(f"{f}: {p}")
            continue
        if not quiet:
            d = lp.dictionary
            click.echo(
                f"{f}: ok (provider {lp.name} {d.info.version}, {len(d.connections)} connection(s), "
                f"{len(d.services)} service(s), {len(d.health_checks)} health check(s))"
            )
    if failed:
        raise click.exceptions.Exit(1)
