"""The ``nlp-tool`` command line."""

import click

from toolkit import __version__


@click.group()
@click.version_option(__version__, prog_name="nlp-tool")
def cli() -> None:
    """nlp-tool: NLP tasks on a C-accelerated core."""
