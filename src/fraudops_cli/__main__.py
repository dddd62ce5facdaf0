"""``python -m fraudops_cli``: the same as the ``fraudops`` command."""

from fraudops_cli.main import main

if __name__ == "__main__":
    main()
