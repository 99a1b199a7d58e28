"""A query's rows written to CSV or Parquet by DuckDB, with their times marked as UTC.

The store keeps UTC times without a zone; written as they are, a CSV says `2025-03-03 10:00:00`
and a Parquet file a zoneless timestamp, which spreadsheets and pandas read as local time.
Cast to TIMESTAMPTZ in a UTC session they carry their offset: `2025-03-03 10:00:00+00` in CSV,
instants adjusted to UTC in Parquet.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    import pandas as pd

    from store.base import ExportFormat

_ZONELESS = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"}


def write(
    con: duckdb.DuckDBPyConnection, relation: duckdb.DuckDBPyRelation, path: Path, fmt: ExportFormat
) -> None:
    """Write `relation` (of `con`, a cursor of this export's own: its session zone becomes UTC)."""
    con.execute("SET TimeZone = 'UTC'")
    columns = []
    for name, kind in zip(relation.columns, relation.types, strict=True):
        quoted = '"' + name.replace('"', '""') + '"'
        zoneless = str(kind) in _ZONELESS  # TIMESTAMP_NS: a pandas frame's (PostgreSQL's rows)
        columns.append(f"{quoted}::TIMESTAMPTZ AS {quoted}" if zoneless else quoted)
    utc = relation.project(", ".join(columns))
    if fmt == "csv":
        utc = _formula_safe(utc)
    if fmt == "parquet":
        utc.write_parquet(str(path))
    else:
        utc.write_csv(str(path), header=True)


def _formula_safe(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """Text cells a spreadsheet would run as a formula ("=HYPERLINK(...)", "-5% for Acme" as
    #NAME?: titles come from outside feeds) start with a quote, as OWASP advises for CSV."""
    columns = []
    for name, kind in zip(relation.columns, relation.types, strict=True):
        quoted = '"' + name.replace('"', '""') + '"'
        if str(kind) == "VARCHAR":
            columns.append(
                f"CASE WHEN regexp_matches({quoted}, '^[=+\\-@\\t\\r]') THEN '''' || {quoted} "
                f"ELSE {quoted} END AS {quoted}"
            )
        else:
            columns.append(quoted)
    return relation.project(", ".join(columns))


def write_frame(
    frame: pd.DataFrame, path: Path, fmt: ExportFormat, types: Mapping[str, str] | None = None
) -> None:
    """Write rows already read (PostgreSQL's, or a command's own columns) the same way; `types`:
    DuckDB's type of a column (a column of NULLs, or any of an empty frame, has none in pandas:
    Parquet's would be NULL)."""
    with duckdb.connect() as local:
        relation = local.from_df(frame)
        if types:
            columns = []
            for name in relation.columns:
                quoted = '"' + name.replace('"', '""') + '"'
                columns.append(f"CAST({quoted} AS {types[name]}) AS {quoted}" if name in types else quoted)
            relation = relation.project(", ".join(columns))
        write(local, relation, path, fmt)
