"""What real daily bars carry that a clean market does not, counted: each oddity is legal under the
contract and handled in a documented way, so an import reports it rather than crashing or dropping rows.

The counts run in DuckDB over relations named by contract table (source files or warehouse tables).
"""

from __future__ import annotations

import duckdb

from factor_pipeline.market.validate import VWAP_TOLERANCE, describe

LIMIT_TOLERANCE = 0.005  # half a tick: a close on its limit may be rounded either way
# a vwap off the traded range by more than half a tick (the rows the validator lets through)
VWAP_ODD = f"(vwap < low - {VWAP_TOLERANCE} OR vwap > high + {VWAP_TOLERANCE})"

# oddity -> how the pipeline treats it (README "Real data")
HANDLING: dict[str, str] = {
    "null_limits": "no fixed limit that day (IPO days): never limit-locked, tradable",
    "suspended_rows": "kept as rows; never a sample, cannot be bought or sold that day",
    "zero_volume_trading": "zero volume on a day not marked suspended: a sample, vwap read as given",
    "st_rows": "ST names: their 5% limits are used as given",
    "outside_limits": "a price beyond the day's limits (relisting days): kept as real; a close at or "
                      "above limit_up still blocks buying",
    "vwap_outside_range": "vwap outside [low, high] but inside the day's limit band (a vendor amount with "
                          "off-auction trades): the vwap is read clipped to [low, high] everywhere (execution, "
                          "labels, images)",
    "unknown_industry": "stocks with industry 'unknown': one more industry in the risk model and the "
                        "industry constraint",
    "members_without_bars": "index members with no daily bar on a weight date: not a sample, untradable; "
                            "their benchmark weight stays in the index",
    "members_suspended": "index members suspended on a weight date: not a sample that day, cannot be traded",
}


def count_oddities(con: duckdb.DuckDBPyConnection, rels: dict[str, str]) -> dict[str, int]:
    """Counts of each oddity in HANDLING (rows, or stocks for unknown_industry)."""
    bars = rels["daily_bars"]
    st = "count(*) FILTER (WHERE is_st)" if "is_st" in describe(con, bars) else "0"
    row = con.execute(f"""
        SELECT count(*) FILTER (WHERE limit_up IS NULL OR limit_down IS NULL),
               count(*) FILTER (WHERE is_suspended),
               count(*) FILTER (WHERE volume = 0 AND NOT is_suspended),
               {st},
               count(*) FILTER (WHERE NOT is_suspended AND (high > limit_up + {LIMIT_TOLERANCE}
                                                           OR low < limit_down - {LIMIT_TOLERANCE})),
               count(*) FILTER (WHERE {VWAP_ODD})
        FROM {bars}""").fetchone()
    out = dict(zip(("null_limits", "suspended_rows", "zero_volume_trading", "st_rows", "outside_limits",
                    "vwap_outside_range"), (int(v or 0) for v in row), strict=True))
    out["unknown_industry"] = int(con.execute(
        f"SELECT count(*) FROM {rels['stocks']} WHERE industry IS NULL OR lower(industry) = 'unknown'").fetchone()[0])
    if "index_weights" in rels:
        missing, suspended = con.execute(f"""
            SELECT count(*) FILTER (WHERE b.code IS NULL), count(*) FILTER (WHERE b.is_suspended)
            FROM {rels['index_weights']} w LEFT JOIN {bars} b
            ON w.code = b.code AND CAST(w.date AS DATE) = CAST(b.date AS DATE)""").fetchone()
        out["members_without_bars"], out["members_suspended"] = int(missing), int(suspended)
    return out


def describe_oddities(counts: dict[str, int]) -> list[str]:
    """One line per oddity: its count and how it is handled."""
    return [f"{k:<22} {v:>9,}  {HANDLING[k]}" for k, v in counts.items()]
