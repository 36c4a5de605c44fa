"""Synthetic csi300 / csi500 / csi1000 / csi_all: membership, float-cap weights and index levels.

Reviews use data up to the last trading day of May and November; the new membership takes effect
at the close of the first trading day after the second Friday of June and December. Weights given
on a date are the weights at that date's close, so the index return of the next day is exactly the
weighted return of the members.
"""

from __future__ import annotations

import numpy as np

from factor_pipeline.market.simulator.engine import DailyPanel
from factor_pipeline.market.simulator.universe import Universe

CSI_ALL_MIN_DAYS = 20
REVIEW_MIN_DAYS = 60


def _month(cal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = cal.astype("datetime64[Y]").astype(int) + 1970
    m = cal.astype("datetime64[M]").astype(int) % 12 + 1
    return y, m


def review_schedule(cal: np.ndarray) -> list[tuple[int, int]]:
    """(review index, effective index) pairs; the first is the start of the calendar itself."""
    y, m = _month(cal)
    out = [(0, 0)]
    for year in np.unique(y):
        for rev_m, eff_m in ((5, 6), (11, 12)):
            rev = np.flatnonzero((y == year) & (m == rev_m))
            eff_month = np.flatnonzero((y == year) & (m == eff_m))
            if len(rev) == 0 or len(eff_month) == 0:
                continue
            first = cal[eff_month[0]].astype("datetime64[M]").astype("datetime64[D]")
            fridays = first + np.arange(31)
            fridays = fridays[((fridays.astype(int) + 3) % 7 == 4)]
            second_friday = fridays[1]
            eff = int(np.searchsorted(cal, second_friday, side="right"))
            if eff < len(cal):
                out.append((int(rev[-1]), eff))
    return out


def _rank_members(
    r: int, uni: Universe, panel: DailyPanel, cs_amt: np.ndarray, cs_cap: np.ndarray, sizes: dict[str, int]
) -> dict[str, np.ndarray]:
    lo120, lo60 = max(r + 1 - 120, 0), max(r + 1 - 60, 0)
    days_listed = r - uni.list_idx
    eligible = panel.listed[r] & ~panel.suspended[r] & ((days_listed >= REVIEW_MIN_DAYS) | (r == 0))
    liq = (cs_amt[r + 1] - cs_amt[lo120]) / (r + 1 - lo120)
    mean_cap = (cs_cap[r + 1] - cs_cap[lo60]) / (r + 1 - lo60)
    cand = np.flatnonzero(eligible)
    if len(cand) == 0:
        return {k: np.zeros(uni.n, dtype=bool) for k in sizes}
    cut = np.quantile(liq[cand], 0.2)
    cand = cand[liq[cand] >= cut]
    order = cand[np.argsort(-mean_cap[cand], kind="stable")]
    out, pos = {}, 0
    for k in ("csi300", "csi500", "csi1000"):
        mask = np.zeros(uni.n, dtype=bool)
        mask[order[pos: pos + sizes[k]]] = True
        out[k] = mask
        pos += sizes[k]
    return out


def index_members(uni: Universe, cal: np.ndarray, panel: DailyPanel, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """[T, N] member masks per index (csi300, csi500, csi1000, csi_all) at each date's close."""
    f = panel.fields
    t_len, n = panel.listed.shape
    cs_amt = np.vstack([np.zeros(n), np.cumsum(np.nan_to_num(f["amount"]), axis=0)])
    cs_cap = np.vstack([np.zeros(n), np.cumsum(np.nan_to_num(f["close"] * f["float_shares"]), axis=0)])
    # a member leaves at the close before its delisting date
    alive_next = np.vstack([panel.listed[1:], panel.listed[-1:]]) & panel.listed
    masks = {k: np.zeros((t_len, n), dtype=bool) for k in ("csi300", "csi500", "csi1000")}
    schedule = review_schedule(cal)
    for j, (rev, eff) in enumerate(schedule):
        end = schedule[j + 1][1] if j + 1 < len(schedule) else t_len
        chosen = _rank_members(rev, uni, panel, cs_amt, cs_cap, sizes)
        for k in masks:
            masks[k][eff:end] = chosen[k][None, :]
    for k in masks:
        masks[k] &= alive_next
    days_listed = np.arange(t_len)[:, None] - uni.list_idx[None, :]
    masks["csi_all"] = alive_next & (days_listed >= CSI_ALL_MIN_DAYS)
    return masks


def index_weights(panel: DailyPanel, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """[T, N] float-cap weights at each date's close (rows sum to 1 where the index has members)."""
    cap = np.nan_to_num(panel.fields["close"] * panel.fields["float_shares"])
    out = {}
    for k, m in masks.items():
        w = np.where(m, cap, 0.0)
        tot = w.sum(axis=1, keepdims=True)
        out[k] = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
    return out


def index_levels(panel: DailyPanel, weights: dict[str, np.ndarray], base: float = 1000.0) -> dict[str, dict]:
    """open / close / vwap levels: yesterday's close weights times today's member returns."""
    f = panel.fields
    ref = panel.ref_close
    rel = {k: np.nan_to_num(f[k] / ref - 1.0) for k in ("open", "close", "vwap")}
    out = {}
    for k, w in weights.items():
        w_prev = np.vstack([w[:1], w[:-1]])
        r = {p: (w_prev * rel[p]).sum(axis=1) for p in rel}
        r["close"][0] = 0.0
        close = base * np.cumprod(1.0 + r["close"])
        prev = np.concatenate([[base], close[:-1]])
        out[k] = {"close": close, "open": prev * (1.0 + r["open"]), "vwap": prev * (1.0 + r["vwap"])}
    return out
