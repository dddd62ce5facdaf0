"""``python -m fraudops``: the same as the ``fraudops`` command."""

from fraudops.cli import app

app()
