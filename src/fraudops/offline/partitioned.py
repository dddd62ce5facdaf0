"""The offline feature engine partitioned by entity, on Dask: history larger than one machine.

The same features as :func:`fraudops.offline.engine.compute_spec_features`, bit for bit, as a
lazy :mod:`dask.dataframe` graph that any Dask scheduler runs (a ``LocalCluster`` of processes,
or a cluster of machines):

1. every row gets its global position (the index: partition offset + row), so ties in time
   are broken as the single-process engine breaks them;
2. the per-row features (passthrough, calendar) are computed partition by partition;
3. for each entity that keys an aggregation, its rows are shuffled by the entity's key hash,
   so all rows of one card (or terminal...) meet in one shard; each shard, put back in row
   order, goes through :func:`~fraudops.offline.engine.entity_features` (the engine's own
   code: the exact integer window sums make a shard's figures those of the whole history);
4. each entity's features return to their rows' partitions by position, and the partitions
   are joined column-wise.

Memory per worker is bounded by a partition (a day of history) and a shard (about
:data:`ROWS_PER_SHARD` rows of one entity's history), not by the whole history. The shuffle is
Dask's (peer-to-peer with a distributed scheduler; it survives a worker's loss by recomputing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fraudops.data.contract import DataValidationError
from fraudops.data.sources import atomic_folder
from fraudops.offline.engine import (
    aggregated_entities,
    compute_spec_features,
    entity_feature_names,
    entity_features,
    row_features,
)
from fraudops.spec.data import prepare_events
from fraudops.spec.model import DatasetSpec

#: Name of the index holding each row's position in the whole history (0 .. n-1).
ROW = "__fraudops_row"
#: Rows per shard when the shards are not given: a shard's entity rows, their sorted copies
#: and window arrays stay within a few hundred MiB on a worker, however long the history.
ROWS_PER_SHARD = 1_000_000


def history_parts(path: Path) -> list[Path]:
    """The Parquet files of a partitioned history, in history order (sorted by path: one
    folder or file per day, e.g. ``day=2018-04-01/part-0.parquet``, keeps time order); a
    single Parquet file is a history of one part.

    Raises:
        DataValidationError: the folder holds no Parquet file (or the file is not Parquet).
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() in {".parquet", ".pq"}:
        return [path]
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise DataValidationError(f"history {path}: no Parquet file found under it")
    return files


def read_history(files: Sequence[Path], spec: DatasetSpec) -> dd.DataFrame:
    """A partitioned history read lazily, one partition per file, validated as the spec says.

    Each partition goes through :func:`fraudops.spec.data.prepare_events` when it is read (on
    a worker), so it is sorted by time then event id within the file; with files that follow
    each other in time (as day partitions do) the history is in the order one process would
    sort it. Event ids are checked for duplicates within a file only (one process checks the
    whole history). Row counts come from the files' footers, so the global positions (the
    index, :data:`ROW`) are known without reading any data.

    Returns:
        A Dask frame of the spec's columns (see ``prepare_events``), index :data:`ROW`, one
        partition per file, divisions known.

    Raises:
        DataValidationError: the spec generates event ids from row order (a position in one
            file is not an id in the history: give the data an id column); when computed,
            any problem ``prepare_events`` raises, naming the column.
    """
    if spec.event_id.generate == "row_order":
        raise DataValidationError(
            "event_id.generate: row_order cannot number a partitioned history (each file "
            "would restart at 0); give the data an event id column"
        )
    counts = [pq.read_metadata(file).num_rows for file in files]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    example = _example(files[0], spec)
    labelled = spec.label.column in example
    meta = _numbered(prepare_events(example, spec, require_label=labelled), 0)
    divisions = [int(offset) for offset in offsets[:-1]] + [int(offsets[-1]) - 1]
    with _keep_types():
        return dd.from_map(
            _read_part,
            list(files),
            [int(offset) for offset in offsets[:-1]],
            args=(spec, labelled),
            meta=meta.iloc[:0],
            divisions=divisions,
            enforce_metadata=False,
        )


def from_frame(events: pd.DataFrame, partitions: int) -> dd.DataFrame:
    """An in-memory history (n rows, e.g. ``prepare_events``' output) as ``partitions``
    contiguous Dask partitions indexed by position (:data:`ROW`)."""
    with _keep_types():
        return dd.from_pandas(_numbered(events, 0), npartitions=max(1, partitions), sort=True)


def partitioned_features(
    history: dd.DataFrame, spec: DatasetSpec, shards: int | None = None
) -> dd.DataFrame:
    """Every feature of ``spec`` for every row of ``history``, as a lazy graph.

    Args:
        history: the events, indexed by global position with known divisions
            (:func:`read_history` or :func:`from_frame`).
        spec: the dataset spec.
        shards: partitions each entity's rows are shuffled into (≥ 1); more shards, smaller
            pieces of history per task. None: one per :data:`ROWS_PER_SHARD` rows.

    Returns:
        A Dask frame, the same partitions and index as ``history``, columns
        ``spec.feature_names()``; computed, equal bit for bit to
        ``compute_spec_features`` of the whole history in position order.
    """
    if not history.known_divisions:
        raise ValueError("history needs known divisions: read it with read_history/from_frame")
    rows = int(history.divisions[-1]) + 1
    shards = max(1, shards or -(-rows // ROWS_PER_SHARD))
    parts = [history.map_partitions(_row_part, spec, meta=_row_meta(history, spec))]
    for entity in aggregated_entities(spec):
        names = entity_feature_names(spec, entity)
        column = spec.entity(entity).column
        needed = [name for name in _entity_inputs(spec, entity) if name in history.columns]
        meta = pd.DataFrame({ROW: pd.Series(dtype=np.int64)}).assign(
            **{name: pd.Series(dtype=np.float64) for name in names}
        )
        shuffled = history[needed].reset_index().shuffle(on=column, npartitions=shards)
        computed = shuffled.map_partitions(_entity_part, spec, entity, names, meta=meta)
        parts.append(computed.set_index(ROW, divisions=list(history.divisions), sort=True))
    joined = dd.concat(parts, axis=1)
    return joined[spec.feature_names()]


def _keep_types() -> dask.config.set:
    """Dask's config that keeps text columns as the engine gives them (Python ``str`` in
    ``object`` columns): by default Dask converts them to Arrow strings, and the files would
    differ in type from the single-process engine's."""
    return dask.config.set({"dataframe.convert-string": False})


def _entity_inputs(spec: DatasetSpec, entity: str) -> list[str]:
    """Columns an entity's features read: time, label (and its known time), the entity,
    and the columns its aggregations sum, compare or count."""
    columns = [spec.event_time.column, spec.label.column, spec.entity(entity).column]
    if spec.label.known_at:
        columns.append(spec.label.known_at)
    for block in spec.aggregations:
        if block.entity == entity:
            columns += [feature.of for feature in block.features if feature.of]
    return list(dict.fromkeys(columns))


def _row_part(events: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    return pd.DataFrame(row_features(events, spec), index=events.index)


def _row_meta(history: dd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    empty = history._meta
    columns = _row_part(empty, spec)
    for categorical in spec.categorical:
        if categorical.feature:
            columns[categorical.column] = empty[categorical.column]
    return columns


def _entity_part(
    shard: pd.DataFrame, spec: DatasetSpec, entity: str, names: list[str]
) -> pd.DataFrame:
    """One shard's features of ``entity``: its rows in history order, then the engine."""
    if shard.empty:
        return pd.DataFrame({ROW: shard[ROW].astype(np.int64)}).assign(
            **{name: pd.Series(dtype=np.float64) for name in names}
        )
    ordered = shard.sort_values(ROW, kind="stable").reset_index(drop=True)
    values = entity_features(ordered, spec, entity)
    return pd.DataFrame({ROW: ordered[ROW].to_numpy(dtype=np.int64), **values})[[ROW, *names]]


def _numbered(events: pd.DataFrame, offset: int) -> pd.DataFrame:
    numbered = events.reset_index(drop=True)
    numbered.index = pd.RangeIndex(offset, offset + len(numbered), name=ROW)
    return numbered


def _example(file: Path, spec: DatasetSpec) -> pd.DataFrame:
    """The first rows of a file, renamed as the spec says: the frame's columns and types."""
    table = pq.ParquetFile(file)
    head = next(table.iter_batches(batch_size=64)).to_pandas()
    return head.rename(columns=dict(spec.reading.rename))


def _read_part(file: Path, offset: int, spec: DatasetSpec, labelled: bool) -> pd.DataFrame:
    raw = pd.read_parquet(file).rename(columns=dict(spec.reading.rename))
    return _numbered(prepare_events(raw, spec, require_label=labelled), offset)


#: A function of one partition of the feature table (event id, time, features) returning the
#: table to write (e.g. with scores added); it must be picklable to reach Dask's workers.
Transform = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class FeatureOutput:
    """What :func:`write_features` wrote: a folder of ``parts`` Parquet files, ``rows`` rows
    (event id, event time, then ``spec.feature_names()``, then what the transform added), one
    file per history part."""

    path: Path
    rows: int
    parts: int


def output_frame(
    history: dd.DataFrame, spec: DatasetSpec, shards: int | None = None
) -> dd.DataFrame:
    """Event id and time beside :func:`partitioned_features`: the rows a feature file holds."""
    keys = history[[spec.event_id.column, spec.event_time.column]]
    return dd.concat([keys, partitioned_features(history, spec, shards)], axis=1)


def write_features(
    files: Sequence[Path],
    spec: DatasetSpec,
    out: Path,
    shards: int | None = None,
    transform: Transform | None = None,
) -> FeatureOutput:
    """Features of a partitioned history written as ``out/part-NNNNN.parquet`` on the current
    Dask scheduler (a ``distributed`` client when one is active), atomically: see
    :func:`~fraudops.data.sources.atomic_folder`. ``out`` must be reachable by every worker
    (shared storage); ``transform`` is applied to each partition before it is written."""
    with _keep_types(), atomic_folder(Path(out)) as partial:
        frame = output_frame(read_history(files, spec), spec, shards)
        if transform is not None:
            frame = frame.map_partitions(transform, meta=transform(frame._meta))
        frame.to_parquet(partial, write_index=False, name_function=_part_name)
    return FeatureOutput(Path(out), int(frame.divisions[-1]) + 1, len(files))


def write_features_in_process(
    files: Sequence[Path], spec: DatasetSpec, out: Path, transform: Transform | None = None
) -> FeatureOutput:
    """The same files as :func:`write_features`, from one process: the whole history read
    into memory and :func:`~fraudops.offline.engine.compute_spec_features` (no Dask)."""
    parts = [_read_part(file, 0, spec, spec.label.column in _example(file, spec)) for file in files]
    events = pd.concat(parts, ignore_index=True)
    keys = events[[spec.event_id.column, spec.event_time.column]]
    table = pd.concat([keys, compute_spec_features(events, spec)], axis=1)
    bounds = np.concatenate([[0], np.cumsum([len(part) for part in parts])])
    with atomic_folder(Path(out)) as partial:
        for i in range(len(parts)):
            piece = table.iloc[bounds[i] : bounds[i + 1]]
            if transform is not None:
                piece = transform(piece)
            piece.to_parquet(partial / _part_name(i), index=False)
    return FeatureOutput(Path(out), len(table), len(parts))


def _part_name(i: int) -> str:
    return f"part-{i:05d}.parquet"
