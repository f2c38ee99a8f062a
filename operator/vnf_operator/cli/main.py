"""vnfctl: the command line of vnf-operator.

Each command (or command group) lives in its own module and is registered in `COMMANDS` as
`name -> "module:attribute"`; modules are imported only when their command runs, so adding one is
one line here and one new file. Errors are one clear line (`-v` adds the detail); never a traceback.
"""

from __future__ import annotations

import sys
import traceback
from importlib import import_module
from typing import Any

import click

from vnf_operator.core.errors import ProblemsError, VnfError

#: Command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "validate": "vnf_operator.cli.validate:command",
    "render": "vnf_operator.cli.render:command",
    "parse": "vnf_operator.cli.parse:command",
    "schema": "vnf_operator.cli.schema:command",
    "health": "vnf_operator.cli.health:command",
    "bootstrap": "vnf_operator.cli.bootstrap:command",
    "exec": "vnf_operator.cli.exec:command",
    "simulate": "vnf_operator.cli.simulate:command",
}


class VnfGroup(click.Group):
    """A group that loads commands lazily and turns errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        cmd = getattr(import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except VnfError as e:
            report_error(e, verbose(ctx))
            ctx.exit(1)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            click.echo(f"vnfctl: error: {type(e).__name__}: {e}", err=True)
            if verbose(ctx) > 1:
                click.echo(traceback.format_exc(), err=True)
            ctx.exit(2)


def verbose(ctx: click.Context) -> int:
    root = ctx.find_root()
    return int(root.params.get("verbose") or 0)


def report_error(e: VnfError, level: int) -> None:
    """One line for an error; with -v every problem of a ProblemsError, one per line."""
    if isinstance(e, ProblemsError):
        head = f"{e.source}: " if e.source else ""
        first = e.problems[0] if e.problems else ""
        more = f" (and {len(e.problems) - 1} more; -v shows all)" if len(e.problems) > 1 and not level else ""
        click.echo(f"vnfctl: error: {head}{e.kind}: {first}{more}", err=True)
        if level:
            for p in e.problems[1:]:
                click.echo(f"  {head}{p}", err=True)
        return
    lines = str(e).splitlines() or [type(e).__name__]
    click.echo(f"vnfctl: error: {lines[0]}", err=True)
    if level:
        for line in lines[1:]:
            click.echo(f"  {line}", err=True)


@click.group(cls=VnfGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", count=True, help="More detail on errors (repeat for more).")
@click.version_option(package_name="vnf-operator", prog_name="vnfctl")
def cli(verbose: int) -> None:
    """vnfctl: validate, render and test vnf-operator provider dictionaries offline."""


def main(argv: list[str] | None = None) -> None:
    """Run vnfctl."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="vnfctl")


if __name__ == "__main__":
    main()
