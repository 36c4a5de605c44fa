"""Daily quantities from 5-minute bars, in SQL: 30-minute bars (msnew) and the ms features.

ms features (SPEC.md appendix), per stock and day, with r_b the log return of bar b (the first
bar from the open) and v_b its volume:
rvol  sqrt(sum r_b^2)                      rskew sqrt(n) sum r^3 / (sum r^2)^1.5
rkurt n sum r^4 / (sum r^2)^2               vhhi  sum (v_b / V)^2
vvol  std(v_b) / V                          cvpct volume share of 14:30-15:00
rjump sum of r_b with |r_b| > 3 sd of the day's bar returns
ovpct volume share of 09:30-10:00          cret  log(close / close at 14:30)
apb   log(TWAP / VWAP) * 1e3               arpp  (TWAP - low) / (high - low)
am_ret log(close at 11:30 / open)          pm_ret log(close / close at 11:30)
TWAP is the mean of bar closes, VWAP = amount / volume.
"""

from __future__ import annotations

MS_FEATURES = ("rvol", "rskew", "rkurt", "vhhi", "vvol", "cvpct", "rjump", "ovpct", "cret", "apb", "arpp",
               "am_ret", "pm_ret")


def _numbered(intraday: str, where: str) -> str:
    return (f"(SELECT *, row_number() OVER (PARTITION BY code, date ORDER BY time) - 1 AS b "
            f"FROM {intraday} WHERE {where})")


def bars30_sql(intraday: str, where: str) -> str:
    """Eight 30-minute bars per day: six 5-minute bars each (bar = 0..7)."""
    return f"""
    SELECT code, date, b // 6 AS bar, arg_min(open, b) AS open, max(high) AS high, min(low) AS low,
           arg_max(close, b) AS close, sum(amount) AS amount
    FROM {_numbered(intraday, where)} GROUP BY code, date, bar
    """


def ms_features_sql(intraday: str, where: str) -> str:
    return f"""
    WITH n AS {_numbered(intraday, where)},
    r AS (SELECT *, ln(close / coalesce(lag(close) OVER (PARTITION BY code, date ORDER BY b), open)) AS r
          FROM n),
    d AS (SELECT code, date, count(*) AS nb, sum(r * r) AS s2, sum(r * r * r) AS s3, sum(r * r * r * r) AS s4,
                 stddev_pop(r) AS rsd, sum(volume) AS vol, sum(amount) AS amt, avg(close) AS twap,
                 max(high) AS hi, min(low) AS lo, stddev_pop(volume) AS vsd,
                 sum(volume * volume) AS v2,
                 sum(volume) FILTER (WHERE b >= 42) AS vlast, sum(volume) FILTER (WHERE b < 6) AS vfirst,
                 arg_max(close, b) AS c_last, max(close) FILTER (WHERE b = 41) AS c_1430,
                 max(close) FILTER (WHERE b = 23) AS c_1130, arg_min(open, b) AS o_first
          FROM r GROUP BY code, date),
    j AS (SELECT r.code, r.date, sum(r.r) FILTER (WHERE abs(r.r) > 3 * d.rsd) AS jump
          FROM r JOIN d USING (code, date) GROUP BY r.code, r.date)
    SELECT code, date,
      sqrt(s2) AS rvol,
      CASE WHEN s2 > 0 THEN sqrt(nb) * s3 / pow(s2, 1.5) END AS rskew,
      CASE WHEN s2 > 0 THEN nb * s4 / (s2 * s2) END AS rkurt,
      CASE WHEN vol > 0 THEN v2 / (vol * vol) END AS vhhi,
      CASE WHEN vol > 0 THEN vsd / vol END AS vvol,
      CASE WHEN vol > 0 THEN vlast / vol END AS cvpct,
      coalesce(jump, 0) AS rjump,
      CASE WHEN vol > 0 THEN vfirst / vol END AS ovpct,
      ln(c_last / c_1430) AS cret,
      CASE WHEN vol > 0 THEN ln(twap / (amt / vol)) * 1e3 END AS apb,
      CASE WHEN hi > lo THEN (twap - lo) / (hi - lo) END AS arpp,
      ln(c_1130 / o_first) AS am_ret,
      ln(c_last / c_1130) AS pm_ret
    FROM d LEFT JOIN j USING (code, date)
    """
