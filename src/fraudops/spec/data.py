"""A user's file through a dataset spec: read it, validate it, give the engine canonical events.

:func:`read_events` applies the spec's reading options (format, separator, decimal, encoding,
renames); :func:`prepare_events` checks every role and column the spec declares and returns
the rows the offline engine expects (naive event times, 0/1 labels, ids and entities without
nulls, numbers within their bounds), sorted by time then event id. Every error names the
column and the spec key that declared it, with counts, values and rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from fraudops.contract import DataValidationError, parse_iso_times, problem_message
from fraudops.sources import DataSourceError
from fraudops.spec.model import DatasetSpec, Numeric, format_duration

#: The category that missing categorical values are given.
MISSING_CATEGORY = "(missing)"


def read_events(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Read a Parquet or CSV file (or a folder of Parquet files) as the spec says.

    Returns:
        The file's rows × its columns, renamed by ``reading.rename``; not yet validated.

    Raises:
        DataSourceError: missing, empty, unreadable or not Parquet/CSV; names the file.
        DataValidationError: a ``reading.rename`` source column is absent.
    """
    path = Path(path)
    reading = spec.reading
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise DataSourceError(f"data folder {path} holds no .parquet files")
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    elif not path.is_file():
        raise DataSourceError(f"data file not found: {path}")
    elif path.stat().st_size == 0:
        raise DataSourceError(f"data file {path} is empty (0 bytes): no header, no rows")
    else:
        kind = reading.format or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(
            path.suffix.lower()
        )
        if kind is None:
            raise DataSourceError(
                f"unsupported data file {path.name}: use .parquet or .csv, or set reading.format"
            )
        try:
            if kind == "csv":
                frame = pd.read_csv(
                    path, sep=reading.sep, decimal=reading.decimal, encoding=reading.encoding
                )
            else:
                frame = pd.read_parquet(path)
        except (pd.errors.EmptyDataError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise DataSourceError(f"cannot read {path}: {exc}") from exc
    absent = sorted(set(reading.rename) - set(frame.columns))
    if absent:
        raise DataValidationError(
            f"reading.rename: source column(s) {absent} not in the data; "
            f"found {list(frame.columns)}"
        )
    return frame.rename(columns=dict(reading.rename))


def _roles(spec: DatasetSpec, require_label: bool) -> dict[str, str]:
    """Column -> the spec key that declares it, for every column the events need."""
    roles: dict[str, str] = {}
    if spec.event_id.generate is None:
        roles[spec.event_id.column] = "event_id.column"
    roles[spec.event_time.column] = "event_time.column"
    if require_label:
        roles[spec.label.column] = "label.column"
    for i, entity in enumerate(spec.entities):
        roles.setdefault(entity.column, f"entities.{i}.column")
    for i, numeric in enumerate(spec.numeric):
        roles.setdefault(numeric.column, f"numeric.{i}.column")
    for i, categorical in enumerate(spec.categorical):
        roles.setdefault(categorical.column, f"categorical.{i}.column")
    return roles


def prepare_events(
    frame: pd.DataFrame, spec: DatasetSpec, *, require_label: bool = True
) -> pd.DataFrame:
    """Validate ``frame`` against ``spec`` and return the events the engine reads.

    Args:
        frame: n rows × at least the spec's columns (after renames); other columns dropped.
        spec: the dataset spec.
        require_label: whether the label column must be present (training: yes).

    Returns:
        n rows × the spec's columns: the event id (generated 0..n-1 in file order when the spec
        says so; ints or strings), naive ``datetime64[ns]`` event times, the label as int8 0/1,
        entities as read, numeric columns as float64, categoricals as strings (missing values
        become ``"(missing)"``); sorted by time, then event id.

    Raises:
        DataValidationError: no rows, a missing column, missing or unparseable values, a
            duplicated event id, a number outside its bounds or not finite, a label that is
            not binary; each problem names the column, the spec key, the count, values and rows.
    """
    roles = _roles(spec, require_label)
    if len(frame) == 0:
        raise DataValidationError(f"events: the data has no rows (columns: {list(frame.columns)})")
    missing = [f"{column!r} ({key})" for column, key in roles.items() if column not in frame]
    if missing:
        raise DataValidationError(
            f"events: missing column(s) {', '.join(missing)}; found {list(frame.columns)}. "
            "Rename columns with reading.rename or fix the spec."
        )
    data = frame[list(roles)].reset_index(drop=True)
    problems: list[str] = []
    out: dict[str, pd.Series] = {}
    if spec.event_id.generate == "row_order":
        out[spec.event_id.column] = pd.Series(np.arange(len(data), dtype=np.int64))
    for column, key in roles.items():
        raw = data[column]
        absent = raw.isna().to_numpy()
        if key.startswith("categorical"):
            out[column] = raw.astype("string").fillna(MISSING_CATEGORY).astype(object)
            continue
        if absent.any():
            what = f"({key}) has missing values (NaN, NaT or empty)"
            problems.append(problem_message(column, what, absent, raw))
            continue
        if key == "event_time.column":
            value = _times(raw, spec, column, problems)
        elif key == "label.column":
            value = _labels(raw, spec, column, problems)
        elif key.startswith("numeric"):
            value = _numbers(raw, spec.numeric[int(key.split(".")[1])], column, key, problems)
        else:
            value = _keys(raw, column, key, problems)
        if value is not None:
            out[column] = value
    if problems:
        raise DataValidationError("events: " + "; ".join(problems))
    events = pd.DataFrame(out)
    id_column = spec.event_id.column
    duplicated = events[id_column].duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise DataValidationError(
            "events: "
            + problem_message(
                id_column, "(event_id.column) has duplicated values", duplicated, events[id_column]
            )
        )
    order = [spec.event_time.column, id_column]
    return events.sort_values(order, kind="stable").reset_index(drop=True)


def _keys(raw: pd.Series, column: str, key: str, problems: list[str]) -> pd.Series | None:
    """Ids and entity keys: whole numbers as int64, anything else as strings."""
    if is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        numbers = raw.to_numpy(dtype=np.float64)
        fractional = ~np.isfinite(numbers) | (numbers != np.floor(numbers))
        if fractional.any():
            what = f"({key}) has values that are not whole numbers"
            problems.append(problem_message(column, what, fractional, raw))
            return None
        return raw.astype(np.int64)
    return raw.astype("string").astype(object)


def _times(raw: pd.Series, spec: DatasetSpec, column: str, problems: list[str]) -> pd.Series | None:
    """Naive event times from timestamps (ISO 8601 text) or a step index with its unit."""
    unit = spec.event_time.unit
    if unit is not None:
        steps = pd.to_numeric(raw, errors="coerce")
        bad = steps.isna().to_numpy()
        if bad.any():
            what = "(event_time.column) has steps that are not numbers"
            problems.append(problem_message(column, what, bad, raw))
            return None
        origin = pd.Timestamp(spec.event_time.origin)
        return origin + pd.to_timedelta(steps.to_numpy(dtype=np.float64) * unit, unit="s")
    value = raw
    if not is_datetime64_any_dtype(raw):
        value = parse_iso_times(raw)
        if not is_datetime64_any_dtype(value):
            problems.append(
                f"column {column!r} (event_time.column) mixes time-zone offsets; give every "
                f"timestamp in one time zone, e.g. {raw.dropna().head(2).tolist()}"
            )
            return None
        unparsed = value.isna().to_numpy()
        if unparsed.any():
            what = (
                "(event_time.column) has values that are not timestamps "
                "(write ISO 8601, e.g. 2018-04-01 10:00:00, or set event_time.unit for steps)"
            )
            problems.append(problem_message(column, what, unparsed, raw))
            return None
    if getattr(value.dt, "tz", None) is not None:
        value = value.dt.tz_convert("UTC").dt.tz_localize(None)
    return value.astype("datetime64[ns]")


def _labels(
    raw: pd.Series, spec: DatasetSpec, column: str, problems: list[str]
) -> pd.Series | None:
    """0/1 labels: values in ``label.positive`` are fraud; at most two distinct values."""
    distinct = pd.unique(raw)
    if len(distinct) > 2:
        problems.append(
            f"column {column!r} (label.column) is not binary: {len(distinct)} distinct values, "
            f"e.g. {sorted(map(str, distinct))[:5]}; label.positive lists the fraud value(s)"
        )
        return None
    positive = {str(v) for v in spec.label.positive}
    as_text = raw.astype(str)
    if raw.dtype.kind == "f":  # 1.0 is the positive label 1
        as_text = raw.map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    fraud = as_text.isin(positive)
    if len(distinct) == 2 and not fraud.any():
        problems.append(
            f"column {column!r} (label.column) has none of label.positive {spec.label.positive}; "
            f"its values are {sorted(map(str, distinct))}"
        )
        return None
    return fraud.astype(np.int8)


def _numbers(
    raw: pd.Series, numeric: Numeric, column: str, key: str, problems: list[str]
) -> pd.Series | None:
    """Finite float64 values within the column's bounds."""
    value = raw
    if not is_numeric_dtype(raw):
        value = pd.to_numeric(raw.astype("string").str.strip(), errors="coerce")
    numbers = value.to_numpy(dtype=np.float64, na_value=np.nan)
    unparsed = np.isnan(numbers)
    if unparsed.any():
        comma = raw[unparsed].astype(str).str.contains(",").any()
        hint = " (set reading.decimal: ',' for a decimal comma)" if comma else ""
        what = f"({key}) has values that are not numbers{hint}"
        problems.append(problem_message(column, what, unparsed, raw))
        return None
    infinite = np.isinf(numbers)
    if infinite.any():
        problems.append(problem_message(column, f"({key}) must be finite", infinite, raw))
    if numeric.min is not None and (below := numbers < numeric.min).any():
        what = f"({key}) must be >= {numeric.min:g} ({key.removesuffix('column')}min)"
        problems.append(problem_message(column, what, below, raw))
    if numeric.max is not None and (above := ~infinite & (numbers > numeric.max)).any():
        what = f"({key}) must be <= {numeric.max:g} ({key.removesuffix('column')}max)"
        problems.append(problem_message(column, what, above, raw))
    return pd.Series(numbers)


def check_history(events: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """Problems that make the data unusable for training with this spec (empty if none).

    A window (plus its lag) as long as the whole history leaves no row with a full window.
    """
    times = events[spec.event_time.column]
    span = int((times.max() - times.min()) / pd.Timedelta(seconds=1)) if len(times) else 0
    problems = []
    for i, block in enumerate(spec.aggregations):
        lag = spec.label.delay if block.lag == "label_delay" else 0
        for j, window in enumerate(block.windows):
            if window + lag >= span:
                problems.append(
                    f"aggregations.{i}.windows.{j}: window {format_duration(window)}"
                    + (f" + lag {format_duration(lag)}" if lag else "")
                    + f" is not shorter than the history ({format_duration(span)})"
                )
    return problems
