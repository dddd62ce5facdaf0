"""``fraudops spec init`` and ``fraudops spec check``: draft a dataset spec, check it on a file.

Thin commands over :mod:`fraudops.spec`; a bad spec or bad data exits 2 with the message that
names the key and the column, and nothing else is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudops_cli.failure import fail

spec_app = typer.Typer(
    help="Describe your data: draft a dataset spec from a file, check a spec against a file.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: Rows read to draft a spec (a sample is enough to guess roles and types).
DRAFT_ROWS = 200_000


@spec_app.command("init")
def init(
    data: Annotated[Path, typer.Option(help="Parquet or CSV file to draft the spec from.")],
    out: Annotated[Path, typer.Option(help="Where to write the drafted YAML spec.")],
    sep: Annotated[str, typer.Option(help="CSV separator, e.g. ';'.")] = ",",
    decimal: Annotated[str, typer.Option(help="CSV decimal point, e.g. ','.")] = ".",
    encoding: Annotated[str, typer.Option(help="CSV text encoding.")] = "utf-8",
    name: Annotated[str | None, typer.Option(help="Spec name; default: the file's stem.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
) -> None:
    """Draft a spec from DATA (column types, candidate roles, features) for you to edit.

    Example: fraudops spec init --data claims.csv --sep ';' --out claims.yaml
    """
    from fraudops.data.contract import DataValidationError
    from fraudops.data.sources import DataSourceError
    from fraudops.spec.data import read_events
    from fraudops.spec.draft import draft_spec
    from fraudops.spec.model import DatasetSpec, Reading

    if out.exists() and not force:
        raise fail(f"{out} exists; pass --force to overwrite it")
    reading = Reading(sep=sep, decimal=decimal, encoding=encoding)
    reader = DatasetSpec.model_validate(
        {
            "name": "reader",
            "reading": reading.model_dump(),
            "event_time": {"column": "-"},
            "label": {"column": "-"},
        }
    )
    try:
        frame = read_events(data, reader).head(DRAFT_ROWS)
        text = draft_spec(frame, name or data.stem, reading)
    except (DataSourceError, DataValidationError, ValueError) as exc:
        raise fail(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"drafted {out} from {min(len(frame), DRAFT_ROWS):,} rows of {data}; edit it, then")
    typer.echo(f"  fraudops spec check {out} --data {data}")


@spec_app.command("check")
def check(
    spec: Annotated[Path, typer.Argument(help="YAML spec file, or a shipped spec's name.")],
    data: Annotated[Path, typer.Option(help="Parquet or CSV file to check it against.")],
) -> None:
    """Validate SPEC, then DATA against it; print the features it will compute.

    Example: fraudops spec check claims.yaml --data claims.csv
    """
    from fraudops.data.contract import DataValidationError
    from fraudops.data.sources import DataSourceError
    from fraudops.offline.engine import compute_spec_features
    from fraudops.offline.windows import SumOverflowError
    from fraudops.spec import SpecError, load_spec
    from fraudops.spec.data import check_history, prepare_events, read_events

    try:
        parsed = load_spec(spec)
        events = prepare_events(read_events(data, parsed), parsed)
        problems = check_history(events, parsed)
        if problems:
            raise fail("; ".join(problems))
        compute_spec_features(events, parsed)
    except (SpecError, DataSourceError, DataValidationError, SumOverflowError) as exc:
        raise fail(str(exc)) from None
    times = events[parsed.event_time.column]
    labels = events[parsed.label.column]
    typer.echo(
        f"{data}: {len(events):,} events, {times.min()} .. {times.max()}, "
        f"{int(labels.sum()):,} frauds ({labels.mean():.3%})"
    )
    names = parsed.feature_names()
    categorical = set(parsed.categorical_features())
    typer.echo(f"{len(names)} features ({len(categorical)} categorical):")
    for feature in names:
        typer.echo(f"  {feature}{'  (categorical)' if feature in categorical else ''}")
