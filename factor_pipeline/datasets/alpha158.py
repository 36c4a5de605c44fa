"""Hand-crafted daily-bar features in the spirit of Qlib's Alpha158: the inputs of the GBDT baseline
a user would pick instead of the report's networks.

All at signal date t from trailing windows (adjusted prices: price * adj_factor), divided by
today's close so they are comparable across stocks:
KMID (c-o)/o · KLEN (h-l)/o · KUP (h-max(o,c))/o · KLOW (min(o,c)-l)/o · KSFT (2c-h-l)/o · VWAP0 vwap/c
ROCd c[t-d]/c (d = 5, 10, 20, 60) · MAd mean(c, d)/c (5, 10, 20, 60) · STDd std(c, d)/c (5, 20, 60)
MAXd max(h, d)/c · MINd min(l, d)/c (20, 60) · RSV20 (c - min(l, 20)) / (max(h, 20) - min(l, 20))
CORR20 corr(c, log(1 + volume)) over 20 days · CNTP20 share of up days in 20
VMAd mean(volume, d)/volume (5, 20) · VSTD20 std(volume, 20)/volume
WVMA20 std(|r| volume, 20) / mean(|r| volume, 20) · TURN5, TURN20 mean turnover
"""

from __future__ import annotations

import numpy as np
import polars as pl

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.datasets.windows import daily_returns, lag, long_table, ratio, stat, window


def alpha158_features(panel: Panel, ts: list[int]) -> dict[str, np.ndarray]:
    """name -> [N, len(ts)] feature values at the panel dates `ts`."""
    ts = np.asarray(ts, dtype=int)
    f = panel.field
    adj = f("adj_factor").astype(np.float64)
    o, h, lo, c = (f(k) * adj for k in ("open", "high", "low", "close"))
    vol = f("volume").astype(np.float64)
    r = daily_returns(c)
    ot, ht, lt, ct, vt = o[:, ts], h[:, ts], lo[:, ts], c[:, ts], vol[:, ts]
    out = {
        "KMID": ratio(ct - ot, ot), "KLEN": ratio(ht - lt, ot), "KUP": ratio(ht - np.maximum(ot, ct), ot),
        "KLOW": ratio(np.minimum(ot, ct) - lt, ot), "KSFT": ratio(2 * ct - ht - lt, ot),
        "VWAP0": ratio(f("vwap")[:, ts] * adj[:, ts], ct),
    }
    for d in (5, 10, 20, 60):
        out[f"ROC{d}"] = ratio(lag(c, d, ts), ct)
        out[f"MA{d}"] = ratio(stat(window(c, d, ts), "mean"), ct)
    for d in (5, 20, 60):
        out[f"STD{d}"] = ratio(stat(window(c, d, ts), "std"), ct)
    for d in (20, 60):
        out[f"MAX{d}"] = ratio(stat(window(h, d, ts), "max"), ct)
        out[f"MIN{d}"] = ratio(stat(window(lo, d, ts), "min"), ct)
    hi20, lo20 = stat(window(h, 20, ts), "max"), stat(window(lo, 20, ts), "min")
    out["RSV20"] = ratio(ct - lo20, hi20 - lo20)
    cw, lv = window(c, 20, ts), window(np.log1p(vol), 20, ts)
    cd, vd = cw - stat(cw, "mean")[..., None], lv - stat(lv, "mean")[..., None]
    out["CORR20"] = ratio(stat(cd * vd, "sum"), np.sqrt(stat(cd * cd, "sum") * stat(vd * vd, "sum")))
    up = np.where(np.isfinite(r), (r > 0).astype(np.float64), np.nan)
    out["CNTP20"] = stat(window(up, 20, ts), "mean")
    for d in (5, 20):
        out[f"VMA{d}"] = ratio(stat(window(vol, d, ts), "mean"), vt)
    out["VSTD20"] = ratio(stat(window(vol, 20, ts), "std"), vt)
    wv = window(np.abs(r) * vol, 20, ts)
    out["WVMA20"] = ratio(stat(wv, "std"), stat(wv, "mean"))
    for d in (5, 20):
        out[f"TURN{d}"] = stat(window(f("turnover"), d, ts), "mean")
    return out


FEATURES = (
    "KMID", "KLEN", "KUP", "KLOW", "KSFT", "VWAP0", "ROC5", "MA5", "ROC10", "MA10", "ROC20", "MA20", "ROC60",
    "MA60", "STD5", "STD20", "STD60", "MAX20", "MIN20", "MAX60", "MIN60", "RSV20", "CORR20", "CNTP20", "VMA5",
    "VMA20", "VSTD20", "WVMA20", "TURN5", "TURN20")


def alpha158_table(panel: Panel, ts: list[int]) -> pl.DataFrame:
    """code, date and the features (column names lower-case, prefixed `a_`) for listed stocks at `ts`."""
    return long_table(panel, ts, {f"a_{k.lower()}": v for k, v in alpha158_features(panel, ts).items()})
