"""``schema``: print a JSON Schema shipped in the package."""

from __future__ import annotations

import click


@click.command("schema", short_help="Print the JSON Schema of client files or of the settings.")
@click.argument("name", type=click.Choice(["clients", "settings"]), default="clients")
def schema(name: str) -> None:
    """Print the JSON Schema of client files or of the settings, for editors and tools."""
    from importlib import resources

    text = resources.files("oauth2_sync").joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    click.echo(text, nl=False)
