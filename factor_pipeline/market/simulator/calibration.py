"""Calibration check of the planted alpha: the oracle's 10-day RankIC on a simulated folder.

Label: adjusted VWAP of t+1 to adjusted VWAP of t+11, over csi_all members on index weight dates.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

_SQL = """
WITH b AS (SELECT code, date, vwap * adj_factor AS av FROM read_parquet('{d}/daily_bars.parquet')),
 l AS (SELECT code, date, lead(av, 1) OVER w AS a1, lead(av, 11) OVER w AS a11 FROM b
       WINDOW w AS (PARTITION BY code ORDER BY date)),
 o AS (SELECT o.code, o.date, o.expected_return_10d AS e, l.a11 / l.a1 - 1 AS y
       FROM read_parquet('{d}/oracle.parquet') o JOIN l USING (code, date)
       JOIN (SELECT code, date FROM read_parquet('{d}/index_weights.parquet') WHERE "index" = 'csi_all')
       USING (code, date)
       WHERE y IS NOT NULL)
SELECT avg(ic), stddev(ic), count(*) FROM (
  SELECT date, corr(re, ry) AS ic FROM (
    SELECT date, rank() OVER (PARTITION BY date ORDER BY e) AS re,
                 rank() OVER (PARTITION BY date ORDER BY y) AS ry FROM o) GROUP BY date)
"""


def oracle_rank_ic(folder: Path) -> tuple[float, float, int]:
    """(mean, sd, dates) of the oracle's daily RankIC against the realised 10-day label."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    mean, sd, n = con.execute(_SQL.format(d=Path(folder))).fetchone()
    return float(mean), float(sd), int(n)
