"""A user's file through a dataset spec: read it, validate it, give the engine canonical events.

:func:`read_events` applies the spec's reading options (format, separator, decimal, encoding,
renames); :func:`prepare_events` checks every role and column the spec declares and returns
the rows the offline engine expects (naive event times, 0/1 labels, ids and entities of their
declared type without nulls, numbers within their bounds), sorted by time then event id. Every
error names the column and the spec key that declared it, with counts, values and rows.

Keys (the event id and entities) follow their declared ``type``, as the scoring API does:
``int`` gives int64 and refuses anything that is not a whole number; ``str`` gives Python
strings, numbers becoming their text (``123`` and ``123.0`` both give ``"123"``; a CSV column
declared str is read as text, so ``00123`` stays ``"00123"``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from fraudops.data.contract import DataValidationError, parse_iso_times, problem_message
from fraudops.data.sources import DataSourceError
from fraudops.spec.model import DatasetSpec, KeyType, Numeric, format_duration

#: The category that missing categorical values are given.
MISSING_CATEGORY = "(missing)"
#: Text that is read as an int key: a plain decimal whole number of at most 18 digits (within
#: int64), no sign but ``-``, no leading zero (``007`` would merge with ``7``), no spaces.
_INT_TEXT: Final = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")


def check_source(path: Path, spec: DatasetSpec) -> str:
    """How :func:`read_events` will read ``path``: ``folder``, ``csv`` or ``parquet``; cheap
    (no row is read), so commands can check their input before starting anything.

    Raises:
        DataSourceError: missing, empty, a folder without Parquet files, or neither Parquet
            nor CSV (by suffix, or ``reading.format``); names the file.
    """
    path = Path(path)
    if path.is_dir():
        if not any(path.rglob("*.parquet")):
            raise DataSourceError(f"data folder {path} holds no .parquet files")
        return "folder"
    if not path.is_file():
        raise DataSourceError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataSourceError(f"data file {path} is empty (0 bytes): no header, no rows")
    kind = spec.reading.format or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(
        path.suffix.lower()
    )
    if kind is None:
        raise DataSourceError(
            f"unsupported data file {path.name}: use .parquet or .csv, or set reading.format"
        )
    return kind


def read_events(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Read a Parquet or CSV file (or a folder of Parquet files, e.g. one per day) as the spec says.

    A CSV column that the spec declares as keys of ``type: str`` is read as text (``00123``
    stays ``00123``); every other column is typed by the reader.

    Returns:
        The file's rows × its columns, renamed by ``reading.rename``; not yet validated.

    Raises:
        DataSourceError: missing, empty, unreadable or not Parquet/CSV (:func:`check_source`);
            names the file.
        DataValidationError: a ``reading.rename`` source column is absent.
    """
    path = Path(path)
    reading = spec.reading
    kind = check_source(path, spec)
    if kind == "folder":
        # its files in path order, subfolders included (a dataset partitioned by day)
        files = sorted(path.rglob("*.parquet"))
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    else:
        try:
            if kind == "csv":
                frame = pd.read_csv(
                    path,
                    sep=reading.sep,
                    decimal=reading.decimal,
                    encoding=reading.encoding,
                    dtype=_text_columns(spec),
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


def _key_types(spec: DatasetSpec) -> dict[str, KeyType]:
    """Key column (as the spec names it) -> its declared type; the event id first."""
    types: dict[str, KeyType] = {}
    if spec.event_id.generate is None:
        types[spec.event_id.column] = spec.event_id.type
    for entity in spec.entities:
        types.setdefault(entity.column, entity.type)
    return types


def _text_columns(spec: DatasetSpec) -> dict[str, type[str]]:
    """File column -> ``str`` for the key columns declared ``type: str`` (for ``read_csv``)."""
    renamed = {new: old for old, new in spec.reading.rename.items()}
    return {
        renamed.get(column, column): str
        for column, kind in _key_types(spec).items()
        if kind == "str"
    }


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
        says so) and the entities as their declared type (``int``: int64; ``str``: object
        column of Python str, whole numbers written without a decimal part), naive
        ``datetime64[ns]`` event times, the label as int8 0/1, numeric columns as float64,
        categoricals as strings (missing values become ``"(missing)"``), and ``label.known_at``
        when declared and present (naive times, NaT where empty); sorted by time, then event id.

    Raises:
        DataValidationError: no rows, a missing column, missing or unparseable values, a key
            declared ``type: int`` with values that are not whole numbers in int64 (text, or
            fractions; the message says to declare ``type: str``), a duplicated event id, a
            number outside its bounds or not finite, a label that is not binary, a label known
            before its event (``label.known_at``); each problem
            names the column, the spec key, the count, values and rows.
    """
    roles = _roles(spec, require_label)
    key_types = _key_types(spec)
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
            value = _keys(raw, key_types[column], column, key, problems)
        if value is not None:
            out[column] = value
    known_at = spec.label.known_at
    time_column = spec.event_time.column
    if known_at is not None and known_at in frame and time_column in out:
        raw_known = frame[known_at].reset_index(drop=True)
        known = _known_times(raw_known, out[time_column], spec, known_at, problems)
        if known is not None:
            out[known_at] = known
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


def _keys(
    raw: pd.Series, kind: KeyType, column: str, key: str, problems: list[str]
) -> pd.Series | None:
    """Ids and entity keys (no missing values) as their declared type.

    ``int``: int64 (see :func:`int_keys`); values that are not whole numbers are reported in
    ``problems`` and None is returned. ``str``: see :func:`key_text`.
    """
    if kind == "str":
        return key_text(raw)
    ints, ok = int_keys(raw)
    if not ok.all():
        what = (
            f"({key}) is declared `{key.removesuffix('column')}type: int` but has values that "
            "are not whole numbers (int64); declare `type: str` for text keys"
        )
        problems.append(problem_message(column, what, ~ok, raw))
        return None
    return pd.Series(ints, index=raw.index)


def int_keys(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Keys read as ``int``: (int64 values, True where the value is one), one per row.

    Whole numbers within int64 (ints, whole floats) are, and so is text written as a plain
    whole number of at most 18 digits (``-12``; not ``012``, which would merge with ``12``, nor
    ``+12``, ``12.0`` or `` 12``). Booleans, fractions, NaN, infinities and other text are not
    (their int64 value is 0).
    """
    n = len(raw)
    if is_bool_dtype(raw):
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    if raw.dtype.kind == "i":
        return raw.to_numpy(dtype=np.int64), np.ones(n, dtype=bool)
    if raw.dtype.kind == "u":
        values = raw.to_numpy()
        ok = values < np.uint64(2**63)
        return np.where(ok, values, 0).astype(np.int64), ok
    if raw.dtype.kind == "f":
        numbers = raw.to_numpy(dtype=np.float64)
        ok = _whole(numbers)
        return np.where(ok, numbers, 0.0).astype(np.int64), ok
    ints = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    for i, value in enumerate(raw.to_numpy(dtype=object)):
        whole = _int_key(value)
        if whole is not None:
            ints[i], ok[i] = whole, True
    return ints, ok


def key_text(raw: pd.Series) -> pd.Series:
    """Keys as an object column of Python str, for ``type: str``.

    Whole numbers become their digits (``123`` and ``123.0`` -> ``"123"``), anything else
    ``str(value)`` (``1.5`` -> ``"1.5"``, text as it is).
    """
    if raw.dtype.kind == "f":
        numbers = raw.to_numpy(dtype=np.float64)
        whole = _whole(numbers)
        text = raw.astype(str).to_numpy(dtype=object)
        text[whole] = [str(v) for v in numbers[whole].astype(np.int64).tolist()]
        return pd.Series(text, index=raw.index, dtype=object)
    if raw.dtype.kind in "iub" or pd.api.types.infer_dtype(raw, skipna=False) == "string":
        return raw.astype(str).astype(object)
    return pd.Series([_text(v) for v in raw.to_numpy(dtype=object)], index=raw.index, dtype=object)


def _whole(numbers: np.ndarray) -> np.ndarray:
    """Finite whole numbers within int64 (NaN: False)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(numbers) & (numbers == np.floor(numbers)) & (np.abs(numbers) < 2.0**63)


def _int_key(value: object) -> int | None:
    """One value of a non-numeric column as an int key, None when it is not one."""
    if isinstance(value, str):
        return int(value) if _INT_TEXT.fullmatch(value) else None
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value) if -(2**63) <= value < 2**63 else None
    if isinstance(value, (float, np.floating)) and _whole(np.array([value]))[0]:
        return int(value)
    return None


def _text(value: object) -> str:
    """One key as text: whole floats without their decimal part."""
    if isinstance(value, (float, np.floating)) and _whole(np.array([value]))[0]:
        return str(int(value))
    return str(value)


def _times(
    raw: pd.Series,
    spec: DatasetSpec,
    column: str,
    problems: list[str],
    key: str = "event_time.column",
) -> pd.Series | None:
    """Naive times from timestamps (ISO 8601 text) or a step index with the event time's unit;
    ``key`` is the spec key named in problems."""
    unit = spec.event_time.unit
    if unit is not None:
        steps = pd.to_numeric(raw, errors="coerce")
        bad = steps.isna().to_numpy()
        if bad.any():
            what = f"({key}) has steps that are not numbers"
            problems.append(problem_message(column, what, bad, raw))
            return None
        origin = pd.Timestamp(spec.event_time.origin)
        return origin + pd.to_timedelta(steps.to_numpy(dtype=np.float64) * unit, unit="s")
    value = raw
    if not is_datetime64_any_dtype(raw):
        value = parse_iso_times(raw)
        if not is_datetime64_any_dtype(value):
            problems.append(
                f"column {column!r} ({key}) mixes time-zone offsets; give every "
                f"timestamp in one time zone, e.g. {raw.dropna().head(2).tolist()}"
            )
            return None
        unparsed = value.isna().to_numpy()
        if unparsed.any():
            what = (
                f"({key}) has values that are not timestamps "
                "(write ISO 8601, e.g. 2018-04-01 10:00:00, or set event_time.unit for steps)"
            )
            problems.append(problem_message(column, what, unparsed, raw))
            return None
    if getattr(value.dt, "tz", None) is not None:
        value = value.dt.tz_convert("UTC").dt.tz_localize(None)
    return value.astype("datetime64[ns]")


def _known_times(
    raw: pd.Series, times: pd.Series, spec: DatasetSpec, column: str, problems: list[str]
) -> pd.Series | None:
    """``label.known_at``: naive times (NaT where empty: known one delay after the event),
    never before the event's own time."""
    known = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    present = raw.notna().to_numpy()
    if present.any():
        parsed = _times(raw[present], spec, column, problems, key="label.known_at")
        if parsed is None:
            return None
        known[present] = parsed.to_numpy()
    early = (known < times).to_numpy()
    if early.any():
        what = "(label.known_at) has labels known before their event's time"
        problems.append(problem_message(column, what, early, raw))
        return None
    return known


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
        lag = block.lag_seconds(spec.label.delay)
        for j, window in enumerate(block.windows):
            if window + lag >= span:
                problems.append(
                    f"aggregations.{i}.windows.{j}: window {format_duration(window)}"
                    + (f" + lag {format_duration(lag)}" if lag else "")
                    + f" is not shorter than the history ({format_duration(span)})"
                )
    return problems
