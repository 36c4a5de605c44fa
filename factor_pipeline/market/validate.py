"""Contract validation in DuckDB SQL: the same rules for imported files and for warehouse slices.

Every rule is a predicate over one table's rows. One scan per table counts all violations; only
failing rules fetch up to five example rows. An error names the table, column, rule and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from factor_pipeline.market.schema import BOOL, DATE, FLOAT, STR, TABLES, TIME, Table

VWAP_TOLERANCE = 0.005  # half a tick: real vwap = amount / volume may sit just outside [low, high]
AGG_PRICE_TOL = 1e-6
AGG_REL_TOL = 1e-6
WEIGHT_SUM_TOL = 1e-6
BOARDS = ("main", "chinext", "star", "bse")  # bse: Beijing Stock Exchange, from 2021-11-15, +-30%
SPARSE_DATE_SHARE = 0.1  # a market that grows 5x over its history still has >= 20% of its median on day one
MAX_EXAMPLES = 5
_SQL_TYPE = {STR: "VARCHAR", DATE: "DATE", FLOAT: "DOUBLE", BOOL: "BOOLEAN", TIME: "TIME"}


@dataclass
class Violation:
    table: str
    column: str
    rule: str
    count: int
    examples: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        rows = "; ".join(", ".join(f"{k}={v}" for k, v in r.items()) for r in self.examples)
        return f"{self.table}.{self.column}: {self.rule} ({self.count} rows) e.g. [{rows}]"


class ContractError(ValueError):
    """Input that breaks the table contract; nothing has been written."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        lines = "\n  ".join(str(v) for v in violations)
        super().__init__(f"{len(violations)} contract violation(s), nothing written:\n  {lines}")

    def __reduce__(self):
        """Rebuilt from its violations when it crosses a process boundary (a `run` stage's own process)."""
        return type(self), (self.violations,)


@dataclass
class Report:
    """What a validation looked at: rows per table and the rules checked."""

    rows: dict[str, int] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    def raise_if_failed(self) -> None:
        if self.violations:
            raise ContractError(self.violations)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _finite(*cols: str) -> str:
    """Guard of an order rule: a NaN/inf cell is reported once, as NaN or inf, not also as out of range."""
    return " AND ".join(f"isfinite({_q(c)})" for c in cols)


def typed_select(table: Table, columns: dict[str, str]) -> str:
    """SELECT list casting the known columns to their contract types (NULL for absent optional)."""
    parts = []
    for col in (*table.columns, *table.optional):
        if col.name in columns:
            parts.append(f"TRY_CAST({_q(col.name)} AS {_SQL_TYPE[col.kind]}) AS {_q(col.name)}")
        elif col in table.optional and not table.open_columns:
            parts.append(f"CAST(NULL AS {_SQL_TYPE[col.kind]}) AS {_q(col.name)}")
    if table.open_columns:
        known = {c.name for c in (*table.columns, *table.optional)}
        parts += [f"TRY_CAST({_q(c)} AS DOUBLE) AS {_q(c)}" for c in columns if c not in known]
    return ", ".join(parts)


def describe(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


class Validator:
    """Validates relations (SQL table expressions) named by contract table."""

    def __init__(self, con: duckdb.DuckDBPyConnection, relations: dict[str, str], focus: set[str] | None = None):
        self.con = con
        self.relations = relations
        self.focus = set(TABLES) if focus is None else focus
        self.report = Report()
        self.columns: dict[str, dict[str, str]] = {}
        self.typed: dict[str, str] = {}

    # -- helpers ---------------------------------------------------------------------------------
    def _flag(self, table: str, column: str, rule: str, count: int, relation: str, pred: str,
              show: list[str]) -> None:
        cols = ", ".join(_q(c) for c in dict.fromkeys(show))
        ex = self.con.execute(f"SELECT {cols} FROM {relation} WHERE {pred} LIMIT {MAX_EXAMPLES}")
        names = [d[0] for d in ex.description]
        examples = [dict(zip(names, (str(v) for v in row), strict=True)) for row in ex.fetchall()]
        self.report.violations.append(Violation(table, column, rule, int(count), examples))

    def _run_rules(self, table: Table, relation: str, rules: list[tuple[str, str, str, list[str]]]) -> None:
        """rules: (column, rule text, SQL predicate of a bad row, columns to show)."""
        self.report.rules.setdefault(table.name, []).extend(f"{c}: {r}" for c, r, _, _ in rules)
        if not rules:
            return
        counts = self.con.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {p})" for _, _, p, _ in rules) + f" FROM {relation}"
        ).fetchone()
        for (col, rule, pred, show), n in zip(rules, counts, strict=True):
            if n:
                self._flag(table.name, col, rule, n, relation, pred, show)

    # -- per table ---------------------------------------------------------------------------------
    def run(self) -> Report:
        for name in TABLES:
            if name in self.relations:
                self._schema(TABLES[name])
            elif TABLES[name].required and name in self.focus:
                self.report.violations.append(Violation(name, "*", "table missing", 0))
        for name in self.typed:
            if name in self.focus:
                self._values(TABLES[name])
        self._cross_tables()
        return self.report

    def _schema(self, table: Table) -> None:
        raw = self.relations[table.name]
        cols = describe(self.con, raw)
        self.columns[table.name] = cols
        missing = [c.name for c in table.columns if c.name not in cols]
        known = {c.name for c in (*table.columns, *table.optional)}
        unknown = [c for c in cols if c not in known and not table.open_columns]
        for c in missing:
            self.report.violations.append(Violation(table.name, c, "missing column", 0))
        for c in unknown:
            self.report.violations.append(Violation(table.name, c, "unknown column", 0))
        if missing:
            return
        key = [c for c in table.key if c in cols]
        bad_type = []
        for c in cols:
            spec = table.column(c)
            kind = spec.kind if spec else (FLOAT if table.open_columns and c not in key else None)
            if kind is None:
                continue
            pred = f"{_q(c)} IS NOT NULL AND TRY_CAST({_q(c)} AS {_SQL_TYPE[kind]}) IS NULL"
            bad_type.append((c, f"wrong dtype (expected {kind}, read as {cols[c]})", pred, [*key, c]))
        self._run_rules(table, raw, bad_type)
        rows = self.con.execute(f"SELECT count(*) FROM {raw}").fetchone()[0]
        self.report.rows[table.name] = int(rows)
        if not any(v.table == table.name for v in self.report.violations):
            self.typed[table.name] = f"(SELECT {typed_select(table, cols)} FROM {raw})"

    def _values(self, table: Table) -> None:
        rel, key = self.typed[table.name], list(table.key)
        cols = self.columns[table.name]
        rules = []
        for c in (*table.columns, *table.optional):
            if c.name not in cols:
                continue
            if not c.nullable:
                rules.append((c.name, "null value", f"{_q(c.name)} IS NULL", [*key, c.name]))
            if c.kind == FLOAT:
                rules.append((c.name, "NaN or inf", f"NOT isfinite({_q(c.name)})", [*key, c.name]))
        for p in table.price_columns:
            rules.append((p, "non-positive price", f"{_q(p)} <= 0 AND {_finite(p)}", [*key, p]))
        if "high" in table.names and "low" in table.names:
            rules.append(("high", "high < low", f"high < low AND {_finite('high', 'low')}", [*key, "high", "low"]))
            for p in ("open", "close"):
                rules.append((p, f"{p} outside [low, high]",
                              f"({p} < low OR {p} > high) AND {_finite(p, 'low', 'high')}", [*key, p, "low", "high"]))
            if "vwap" in table.names:
                # outside the traded range but inside the limit band (or on a day without limits) is a
                # vendor's amount that counts off-auction trades: an oddity (oddities.py), not refused
                t = VWAP_TOLERANCE
                band = "limit_up IS NOT NULL AND limit_down IS NOT NULL"
                rules.append(("vwap", f"vwap outside [low, high] by more than {t} and outside the day's limit "
                                      "band [limit_down, limit_up]",
                              f"(vwap < low - {t} OR vwap > high + {t}) AND {band} "
                              f"AND (vwap < limit_down - {t} OR vwap > limit_up + {t}) "
                              f"AND {_finite('vwap', 'low', 'high')}",
                              [*key, "vwap", "low", "high", "limit_down", "limit_up"]))
        for c in ("volume", "amount"):
            if c in table.names:
                rules.append((c, "negative", f"{c} < 0 AND {_finite(c)}", [*key, c]))
        if table.name == "daily_bars":
            # every adjusted price, image and label divides by adj_factor; turnover, float cap and the
            # size style read float_shares, which a stock that trades must have
            rules.append(("adj_factor", "non-positive adj_factor", f"adj_factor <= 0 AND {_finite('adj_factor')}",
                          [*key, "adj_factor"]))
            rules.append(("float_shares", "negative float_shares", f"float_shares < 0 AND {_finite('float_shares')}",
                          [*key, "float_shares"]))
            rules.append(("float_shares", "zero float_shares on a trading day (not suspended)",
                          "float_shares = 0 AND NOT is_suspended", [*key, "float_shares", "is_suspended"]))
        if table.name == "index_weights":
            rules.append(("weight", "negative weight", "weight < 0", [*key, "weight"]))
        if table.name == "stocks":
            boards = ", ".join(f"'{b}'" for b in BOARDS)
            rules.append(("board", f"board not in ({boards})", f"board NOT IN ({boards})", ["code", "board"]))
            rules.append(("delist_date", "delist_date <= list_date", "delist_date <= list_date",
                          ["code", "list_date", "delist_date"]))
        self._run_rules(table, rel, rules)
        self._duplicates(table, rel)
        if table.name == "daily_bars":
            self._sparse_dates(table, rel)

    def _sparse_dates(self, table: Table, rel: str) -> None:
        """A date on which only a few stocks have bars (a stray row dated 1900-01-01) is not a trading
        date: it would start the calendar and the weeks there."""
        per_date = f"(SELECT date, count(*) AS n_bars FROM {rel} GROUP BY date)"
        sparse = (f"(SELECT b.code, b.date, d.n_bars, m.median_bars FROM {rel} b JOIN {per_date} d USING (date), "
                  f"(SELECT median(n_bars) AS median_bars FROM {per_date}) m "
                  f"WHERE d.n_bars < {SPARSE_DATE_SHARE} * m.median_bars)")
        self._run_rules(table, sparse, [(
            "date", f"date with bars of fewer than {SPARSE_DATE_SHARE:.0%} of the median date's stocks "
            "(not a trading date)", "true", ["code", "date", "n_bars", "median_bars"])])

    def _duplicates(self, table: Table, rel: str) -> None:
        keys = ", ".join(_q(k) for k in table.key)
        dup = f"(SELECT {keys}, count(*) AS n_rows FROM {rel} GROUP BY ALL HAVING count(*) > 1)"
        self._run_rules(table, dup, [(",".join(table.key), "duplicate key", "true", [*table.key, "n_rows"])])

    def _cross_tables(self) -> None:
        t = self.typed
        if "stocks" in t:
            for name in ("daily_bars", "intraday_bars", "l2_daily", "index_weights"):
                if name in t and name in self.focus:
                    rel = f"(SELECT * FROM {t[name]} WHERE code NOT IN (SELECT code FROM {t['stocks']}))"
                    key = list(TABLES[name].key)
                    self._run_rules(TABLES[name], rel, [("code", "code not in stocks", "true", key)])
        if "index_weights" in t and "index_weights" in self.focus:
            sums = f"(SELECT \"index\", date, sum(weight) AS weight_sum FROM {t['index_weights']} GROUP BY ALL)"
            self._run_rules(TABLES["index_weights"], sums, [(
                "weight", f"weights do not sum to 1 per (index, date) (tolerance {WEIGHT_SUM_TOL})",
                f"abs(weight_sum - 1) > {WEIGHT_SUM_TOL}", ["index", "date", "weight_sum"])])
        if "intraday_bars" in t and "daily_bars" in t and "intraday_bars" in self.focus:
            self._intraday_adds_up(t["intraday_bars"], t["daily_bars"])

    def _intraday_adds_up(self, intraday: str, daily: str) -> None:
        agg = (
            f"(SELECT code, date, arg_min(open, time) AS i_open, max(high) AS i_high, min(low) AS i_low, "
            f"arg_max(close, time) AS i_close, sum(volume) AS i_volume, sum(amount) AS i_amount "
            f"FROM {intraday} GROUP BY ALL)"
        )
        joined = f"(SELECT a.*, d.open, d.high, d.low, d.close, d.volume, d.amount, d.code IS NULL AS no_daily " \
                 f"FROM {agg} a LEFT JOIN {daily} d USING (code, date))"
        rules = [("date", "intraday bars without a daily bar", "no_daily", ["code", "date"])]
        for p in ("open", "high", "low", "close"):
            rules.append((p, f"intraday bars do not add up to the daily bar ({p})",
                          f"NOT no_daily AND abs(i_{p} - {p}) > {AGG_PRICE_TOL}", ["code", "date", f"i_{p}", p]))
        for p in ("volume", "amount"):
            rules.append((p, f"intraday bars do not add up to the daily bar ({p})",
                          f"NOT no_daily AND abs(i_{p} - {p}) > {AGG_REL_TOL} * greatest(abs({p}), 1)",
                          ["code", "date", f"i_{p}", p]))
        self._run_rules(TABLES["intraday_bars"], joined, rules)


def validate(con: duckdb.DuckDBPyConnection, relations: dict[str, str], focus: set[str] | None = None) -> Report:
    """Check relations (table name -> SQL table expression) against the contract.

    `focus` limits the row rules to some tables; the others are only context (e.g. the daily bars
    that intraday bars must add up to).
    """
    return Validator(con, relations, focus).run()
