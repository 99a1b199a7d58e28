"""The few places where DuckDB's SQL and PostgreSQL's differ.

Everything else the store says (queries, upserts with ON CONFLICT, FILTER
clauses, unnest, arrays) is written once in SQL both accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# Time buckets shorter than a month count from this Monday (DuckDB's own default origin).
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
_ORIGIN_SQL = f"TIMESTAMP '{BUCKET_ORIGIN:%Y-%m-%d %H:%M:%S}'"


@dataclass(frozen=True)
class Dialect:
    """How one database spells a time bucket, the schema's column types and a byte-wise text order."""

    name: str
    bucket_function: str
    # Schema type names (as the migrations spell them, DuckDB's; regular expressions) -> this database's.
    types: tuple[tuple[str, str], ...] = ()
    # What makes a text sort key order by its bytes: PostgreSQL's text follows the database's
    # collation (ICU en-US puts "apnews" before "Bloomberg"); DuckDB's always compares bytes.
    collate: str = ""

    def bucket(self, interval: str, column: str) -> str:
        """The start of the `interval` bucket (a validated literal such as '5 minutes') holding `column`."""
        return f"{self.bucket_function}(INTERVAL '{interval}', {column}, {_ORIGIN_SQL})"

    def bytewise(self, *columns: str) -> str:
        """Text sort keys (ORDER BY terms) ordered by their bytes, as DuckDB orders them, whatever
        the database's collation: pages of ties hold the same rows in both databases."""
        return ", ".join(f"{column}{self.collate}" for column in columns)

    def ddl(self, sql: str) -> str:
        """A migration statement in this database's type names."""
        for ours, theirs in self.types:
            sql = re.sub(rf"\b{ours}\b", theirs, sql)
        return sql


DUCKDB = Dialect("duckdb", "time_bucket")
POSTGRES = Dialect(
    "postgresql", "date_bin", types=((r"DOUBLE(?! PRECISION)", "DOUBLE PRECISION"),), collate=' COLLATE "C"'
)
