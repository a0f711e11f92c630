"""Command-line interface (Typer): ``toolkit.cli.app:app``."""
