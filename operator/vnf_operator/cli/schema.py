"""vnfctl schema: print (or write) the JSON Schema of the language and its reference document."""

from __future__ import annotations

from pathlib import Path

import click

from vnf_operator.core.schema_export import REFERENCE_PATH, SCHEMA_PATH, reference_markdown, schema_text


@click.command("schema")
@click.option(
    "--reference", is_flag=True, help="Print docs/language-reference.md instead of the JSON Schema."
)
@click.option(
    "--write",
    "root",
    metavar="ROOT",
    default=None,
    help=f"Write {SCHEMA_PATH} and {REFERENCE_PATH} under the project root ROOT instead of printing.",
)
def command(reference: bool, root: str | None) -> None:
    """Print the JSON Schema of provider dictionaries (generated from the model)."""
    if root is not None:
        for rel, text in ((SCHEMA_PATH, schema_text()), (REFERENCE_PATH, reference_markdown())):
            path = Path(root) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            click.echo(f"wrote {path}")
        return
    click.echo(reference_markdown() if reference else schema_text(), nl=False)
