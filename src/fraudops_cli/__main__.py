"""``python -m fraudops_cli``: the same as the ``fraudops`` command."""

from fraudops_cli.main import app

if __name__ == "__main__":
    app()
