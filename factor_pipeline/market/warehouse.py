"""The DuckDB warehouse: contract tables loaded slice by slice, validated first, written atomically."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from factor_pipeline.config import home
from factor_pipeline.market.schema import TABLES
from factor_pipeline.market.sources import MarketSource
from factor_pipeline.market.validate import Report, describe, typed_select, validate

# tables whose validation needs another table's rows as context
CONTEXT = {"daily_bars": ("stocks",), "intraday_bars": ("stocks", "daily_bars"), "l2_daily": ("stocks",),
           "index_weights": ("stocks",), "index_daily": (), "stocks": (), "oracle": ()}
LOCK_WAIT_S = 600.0


class SourceMismatch(RuntimeError):
    """The warehouse already holds another market; mixing two would corrupt every later stage."""


def connect_memory() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


@dataclass
class LoadResult:
    table: str
    rows: int
    start: date | None
    end: date | None
    absent: bool = False
    report: Report = field(default_factory=Report)
    codes: int = 0  # distinct stocks in the slice
    first: date | None = None  # first and last date present in the slice
    last: date | None = None


class Warehouse:
    """`warehouse.duckdb` under the home. Connections are short-lived so processes can take turns."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else home() / "warehouse.duckdb"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"no warehouse at {self.path}: run `factor-pipeline run` or `import` first")
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:  # another process holds the write lock: wait our turn
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            con.execute("SET enable_progress_bar = false")
            yield con
        finally:
            con.close()

    def tables(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.connect(read_only=True) as con:
            return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]

    def source_identity(self) -> str | None:
        if "_source" not in self.tables():
            return None
        with self.connect(read_only=True) as con:
            row = con.execute("SELECT identity FROM _source").fetchone()
        return row[0] if row else None

    def universe(self) -> str:
        """The sample universe the datasets and models use (`run --universe`); csi_all unless set."""
        if "_settings" not in self.tables():
            return "csi_all"
        with self.connect(read_only=True) as con:
            row = con.execute("SELECT value FROM _settings WHERE key = 'universe'").fetchone()
        return row[0] if row else "csi_all"

    def set_universe(self, name: str) -> None:
        with self.connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS _settings (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.execute("INSERT OR REPLACE INTO _settings VALUES ('universe', ?)", [name])

    def checksum(self, table: str) -> tuple[int, int]:
        """(rows, order-independent hash of all rows): equal before and after an idempotent reload."""
        with self.connect(read_only=True) as con:
            return con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {table} t").fetchone()

    def reset(self) -> None:
        for p in (self.path, self.path.with_name(self.path.name + ".wal")):
            p.unlink(missing_ok=True)

    def load(self, source: MarketSource, table: str, start: date | None = None, end: date | None = None) -> LoadResult:
        """Validate the source rows of `table` with start <= date < end (all rows if None), then
        replace exactly that slice in the warehouse in one transaction. Raises ContractError
        (nothing written) on bad input, SourceMismatch if the warehouse holds another market."""
        rels = source.relations()
        if table not in rels:
            return LoadResult(table, 0, start, end, absent=True)
        spec = TABLES[table]
        sliced = spec.date_column is not None and start is not None

        def where(name: str) -> str:
            if TABLES[name].date_column is None or start is None:
                return "true"
            return f"CAST(date AS DATE) >= DATE '{start}' AND CAST(date AS DATE) < DATE '{end}'"

        scope = {n: f"(SELECT * FROM {rels[n]} WHERE {where(n)})" for n in (table, *CONTEXT[table]) if n in rels}
        report = validate(connect_memory(), scope, focus={table})
        report.raise_if_failed()

        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                self._claim(con, source)
                select = typed_select(spec, describe(con, rels[table]))
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT {select} FROM {rels[table]} LIMIT 0")
                con.execute(f"DELETE FROM {table} WHERE {where(table) if sliced else 'true'}")
                con.execute(f"INSERT INTO {table} BY NAME SELECT {select} FROM {rels[table]} WHERE {where(table)}")
                cover = ", count(DISTINCT code)" if "code" in spec.names else ", 0"
                cover += ", min(date), max(date)" if spec.date_column else ", NULL, NULL"
                rows, codes, first, last = con.execute(
                    f"SELECT count(*){cover} FROM {table} WHERE {where(table)}").fetchone()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return LoadResult(table, int(rows), start, end, report=report, codes=int(codes), first=first, last=last)

    def replace_rows(self, table: str, frame, where: str) -> int:
        """Replace the rows matching `where` with `frame` (a Polars frame) in one transaction."""
        return self.replace_many([(table, frame, where)])

    def replace_many(self, changes: list[tuple[str, object, str]]) -> int:
        """(table, frame, where) replacements in one transaction: a reader sees all of them or none."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for k, (table, frame, where) in enumerate(changes):
                    con.register(f"_incoming{k}", frame)
                    con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM _incoming{k} LIMIT 0")
                    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
                    for row in con.execute(f"DESCRIBE _incoming{k}").fetchall():
                        if row[0] not in have:  # a newer version adds a column: older rows read it as null
                            con.execute(f'ALTER TABLE {table} ADD COLUMN "{row[0]}" {row[1]}')
                    con.execute(f"DELETE FROM {table} WHERE {where}")
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming{k}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return sum(frame.height for _, frame, _ in changes)

    def _claim(self, con: duckdb.DuckDBPyConnection, source: MarketSource) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS _source (identity VARCHAR, folder VARCHAR)")
        row = con.execute("SELECT identity FROM _source").fetchone()
        if row is None:
            con.execute("INSERT INTO _source VALUES (?, ?)", [source.identity, str(source.folder)])
        elif row[0] != source.identity:
            raise SourceMismatch(
                f"the warehouse {self.path} holds the market {row[0]}, not {source.identity}; use another "
                f"FACTOR_PIPELINE_HOME or replace it (`factor-pipeline run --replace` / `import --replace`)"
            )
