"""Alpha158 exactly as Qlib defines it (`qlib.contrib.data.loader.Alpha158DL`): the inputs of the peer a
user would pick instead of the report's networks (Qlib's LightGBM on Alpha158).

158 features at date t, all from trailing windows of adjusted daily bars (price * adj_factor; volume
/ adj_factor, as Qlib stores it). A day the stock does not trade (suspended, not yet listed) is
missing, and every rolling operator skips missing days as Qlib's `rolling(N, min_periods=1)` does.
  kbar (9)   KMID (c-o)/o · KLEN (h-l)/o · KMID2 (c-o)/(h-l+e) · KUP (h-max(o,c))/o · KUP2 (h-max(o,c))/(h-l+e)
             KLOW (min(o,c)-l)/o · KLOW2 (min(o,c)-l)/(h-l+e) · KSFT (2c-h-l)/o · KSFT2 (2c-h-l)/(h-l+e)
  price (4)  OPEN0 o/c · HIGH0 h/c · LOW0 l/c · VWAP0 vwap/c
  rolling    29 operators x windows d in (5, 10, 20, 30, 60) = 145:
             ROC Ref(c,d)/c · MA mean(c)/c · STD std(c)/c · BETA slope(c)/c · RSQR r^2 of c on time ·
             RESI residual of today's c/c · MAX max(h)/c · MIN min(l)/c · QTLU q80(c)/c · QTLD q20(c)/c ·
             RANK percentile of c in the window · RSV (c-min(l))/(max(h)-min(l)+e) · IMAX argmax(h)/d ·
             IMIN argmin(l)/d · IMXD (argmax(h)-argmin(l))/d · CORR corr(c, log(v+1)) ·
             CORD corr(c/c[-1], log(v/v[-1]+1)) · CNTP share of up days · CNTN share of down days ·
             CNTD CNTP-CNTN · SUMP sum(up moves)/sum(|moves|) · SUMN · SUMD · VMA mean(v)/v · VSTD std(v)/v ·
             WVMA std(|r| v)/mean(|r| v) · VSUMP, VSUMN, VSUMD as SUM* on volume
  (e = 1e-12; std with ddof 1; argmax/argmin 1-based from the window's oldest day; q by linear
  interpolation; Qlib's IdxMax takes np.argmax, which a missing day inside the window would win:
  here the missing day is skipped.) Every value at t reads nothing after t: every window ends at t.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.datasets.windows import long_table

EPS = 1e-12
WINDOWS = (5, 10, 20, 30, 60)
KBAR = ("KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2")
PRICE = ("OPEN0", "HIGH0", "LOW0", "VWAP0")
ROLLING = ("ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV", "IMAX", "IMIN",
           "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD", "VMA", "VSTD", "WVMA", "VSUMP",
           "VSUMN", "VSUMD")
FEATURES = KBAR + PRICE + tuple(f"{op}{d}" for op in ROLLING for d in WINDOWS)  # Qlib's order
CHUNK = 48  # dates per block: bounds the [stocks, dates, 60] window temporaries
STOCKS = 400  # stocks per block of alpha158_rows: bounds the [stocks, days] series and cumulative sums
PAD = max(WINDOWS) - 1


def _win(sp: np.ndarray, d: int, ts: np.ndarray) -> np.ndarray:
    """[N, len(ts), d] trailing windows ending at each t, from a series padded with PAD missing days."""
    return sliding_window_view(sp, d, axis=1)[:, ts + PAD - d + 1]


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = a / b
    return np.where(np.isfinite(out), out, np.nan)


def _prev(x: np.ndarray) -> np.ndarray:
    out = np.full_like(x, np.nan)
    out[:, 1:] = x[:, :-1]
    return out


class _Roll:
    """Sums of a padded [N, PAD + T] series over trailing windows, from cumulative sums: O(N T) per
    window length instead of O(N T d). Missing days count as absent (Qlib's min_periods=1)."""

    def __init__(self, *xs: np.ndarray):
        ok = np.logical_and.reduce([np.isfinite(x) for x in xs])
        self.cs = {"n": _cum(ok.astype(np.float64))}
        self.vals = [np.where(ok, x, 0.0) for x in xs]
        self.ok = ok

    def add(self, key: str, v: np.ndarray) -> None:
        self.cs[key] = _cum(v)

    def get(self, key: str, d: int, jp: np.ndarray) -> np.ndarray:
        c = self.cs[key]
        return c[:, jp + 1] - c[:, jp + 1 - d]


def _cum(v: np.ndarray) -> np.ndarray:
    out = np.zeros((v.shape[0], v.shape[1] + 1))
    np.cumsum(v, axis=1, out=out[:, 1:])
    return out


def _moments(x: np.ndarray) -> _Roll:
    r = _Roll(x)
    r.add("s1", r.vals[0])
    r.add("s2", r.vals[0] ** 2)
    del r.vals, r.ok
    return r


def _mean(r: _Roll, d: int, jp: np.ndarray) -> np.ndarray:
    return _div(r.get("s1", d, jp), r.get("n", d, jp))


def _sum(r: _Roll, d: int, jp: np.ndarray) -> np.ndarray:
    """Qlib Sum: NaN only when every day of the window is missing."""
    return np.where(r.get("n", d, jp) > 0, r.get("s1", d, jp), np.nan)


def _std(r: _Roll, d: int, jp: np.ndarray) -> np.ndarray:
    n, s1, s2 = r.get("n", d, jp), r.get("s1", d, jp), r.get("s2", d, jp)
    ss = np.maximum(s2 - _div(s1 * s1, n), 0.0)
    return np.where(n >= 2, np.sqrt(_div(ss, n - 1)), np.nan)


def _pair(a: np.ndarray, b: np.ndarray) -> _Roll:
    r = _Roll(a, b)
    x, y = r.vals
    for key, v in (("sx", x), ("sy", y), ("sxx", x * x), ("syy", y * y), ("sxy", x * y)):
        r.add(key, v)
    del r.vals, r.ok
    return r


def _corr(r: _Roll, d: int, jp: np.ndarray) -> np.ndarray:
    """Pearson correlation over the days both are present (NaN with fewer than 2 or no variance)."""
    n, sx, sy = r.get("n", d, jp), r.get("sx", d, jp), r.get("sy", d, jp)
    vx = n * r.get("sxx", d, jp) - sx * sx
    vy = n * r.get("syy", d, jp) - sy * sy
    cxy = n * r.get("sxy", d, jp) - sx * sy
    with np.errstate(invalid="ignore"):
        flat = (vx <= 1e-10 * np.maximum(sx * sx, 1e-300)) | (vy <= 1e-10 * np.maximum(sy * sy, 1e-300))
    return np.where((n >= 2) & ~flat, _div(cxy, np.sqrt(np.maximum(vx, 0) * np.maximum(vy, 0))), np.nan)


def _regress(r: _Roll, y_last: np.ndarray, d: int, jp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope, r^2 and last-day residual of the window's values on time (finite days only). Time is
    the day's index in the panel: a shift of the positions changes none of the three."""
    n, sx, sy = r.get("n", d, jp), r.get("sx", d, jp), r.get("sy", d, jp)
    vx = n * r.get("sxx", d, jp) - sx * sx
    vy = n * r.get("syy", d, jp) - sy * sy
    cxy = n * r.get("sxy", d, jp) - sx * sy
    slope = np.where(n >= 2, _div(cxy, vx), np.nan)
    with np.errstate(invalid="ignore"):
        flat = vy <= 1e-10 * np.maximum(sy * sy, 1e-300)
    r2 = np.where((n >= 2) & ~flat, _div(cxy * cxy, vx * np.maximum(vy, 0)), np.nan)
    intercept = _div(sy - slope * sx, n)
    resid = y_last - (intercept + slope * jp.astype(np.float64))
    return slope, r2, resid


def _count(w: np.ndarray) -> np.ndarray:
    return np.isfinite(w).sum(axis=-1)


def _arg(w: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(extreme value, 1-based position from the window's oldest day); NaN if the window is empty."""
    fill = -np.inf if how == "max" else np.inf
    filled = np.where(np.isfinite(w), w, fill)
    idx = np.argmax(filled, axis=-1) if how == "max" else np.argmin(filled, axis=-1)
    val = np.take_along_axis(filled, idx[..., None], -1)[..., 0]
    empty = _count(w) == 0
    return np.where(empty, np.nan, val), np.where(empty, np.nan, idx + 1.0)


def _quantiles(w: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Linear-interpolated quantiles of the finite values (pandas' rolling quantile), one sort."""
    s = np.sort(w, axis=-1)  # NaN sorts last
    n = _count(w)
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        a = np.take_along_axis(s, lo[..., None], -1)[..., 0]
        b = np.take_along_axis(s, hi[..., None], -1)[..., 0]
        out.append(np.where(n > 0, a + (b - a) * (pos - lo), np.nan))
    return out


def _rank_last(w: np.ndarray) -> np.ndarray:
    """Percentile rank (average ties) of the window's last value among its finite values (pandas
    rolling rank(pct=True)); NaN when today's value is missing."""
    last = w[..., -1:]
    with np.errstate(invalid="ignore"):
        less = (w < last).sum(axis=-1)
        equal = (w == last).sum(axis=-1)
    n = _count(w)
    return np.where(np.isfinite(last[..., 0]) & (n > 0), _div(less + (equal + 1) / 2.0, n), np.nan)


def _first(x: np.ndarray) -> np.ndarray:
    """[N, 1] each row's first finite positive value (1 where there is none)."""
    ok = np.isfinite(x) & (x > 0)
    v = x[np.arange(len(x)), np.argmax(ok, axis=1)][:, None]
    return np.where(ok.any(axis=1)[:, None], v, 1.0)


def _series(panel: Panel) -> dict[str, np.ndarray]:
    """[N, PAD + T] adjusted inputs, NaN on days the stock does not trade (and on the PAD days before
    the panel). Prices and volume are divided by the stock's first value in the panel (the past
    only): every feature but CORR's log(v+1) (computed before) is a ratio, and sums of squares stay
    well conditioned."""
    f = panel.field
    adj = f("adj_factor").astype(np.float64)
    live = panel.listed & ~panel.suspended
    s = {k: np.where(live, f(k) * adj, np.nan) for k in ("open", "high", "low", "close", "vwap")}
    vol = np.where(live, _div(f("volume").astype(np.float64), adj), np.nan)
    s["lv"] = np.log(vol + 1.0)
    scale, vscale = _first(s["close"]), _first(np.where(vol > 0, vol, np.nan))
    for k in ("open", "high", "low", "close", "vwap"):
        s[k] = s[k] / scale
    s["volume"] = vol / vscale
    c, v = s["close"], s["volume"]
    cp, vp = _prev(c), _prev(v)
    s["dc"], s["dv"] = c - cp, v - vp
    s["cret"] = _div(c, cp)
    s["lvr"] = np.log(_div(v, vp) + 1.0)
    with np.errstate(invalid="ignore"):
        # Qlib compares with NaN as False: a day after a missing one counts as neither up nor down
        s["up"] = np.where(live, (c > cp).astype(np.float64), np.nan)
        s["down"] = np.where(live, (c < cp).astype(np.float64), np.nan)
    s["wv"] = np.abs(s["cret"] - 1.0) * v
    pad = np.full((c.shape[0], PAD), np.nan)
    return {k: np.concatenate([pad, x], axis=1) for k, x in s.items()}


def _rolls(s: dict[str, np.ndarray]) -> dict[str, _Roll]:
    g = np.broadcast_to(np.arange(s["close"].shape[1], dtype=np.float64), s["close"].shape)
    r = {k: _moments(s[k]) for k in ("close", "volume", "wv", "up", "down")}
    r["time"] = _pair(g, s["close"])
    r["corr"] = _pair(s["close"], s["lv"])
    r["cord"] = _pair(s["cret"], s["lvr"])
    for pre, key in (("SUM", "dc"), ("VSUM", "dv")):
        for part, v in (("P", np.maximum(s[key], 0.0)), ("N", np.maximum(-s[key], 0.0)), ("A", np.abs(s[key]))):
            r[pre + part] = _moments(np.where(np.isfinite(s[key]), v, np.nan))
    return r


def _kbar(s: dict[str, np.ndarray], jp: np.ndarray) -> dict[str, np.ndarray]:
    o, h, lo, c, vw = (s[k][:, jp] for k in ("open", "high", "low", "close", "vwap"))
    rng = h - lo + EPS
    return {
        "KMID": _div(c - o, o), "KLEN": _div(h - lo, o), "KMID2": _div(c - o, rng),
        "KUP": _div(h - np.maximum(o, c), o), "KUP2": _div(h - np.maximum(o, c), rng),
        "KLOW": _div(np.minimum(o, c) - lo, o), "KLOW2": _div(np.minimum(o, c) - lo, rng),
        "KSFT": _div(2 * c - h - lo, o), "KSFT2": _div(2 * c - h - lo, rng),
        "OPEN0": _div(o, c), "HIGH0": _div(h, c), "LOW0": _div(lo, c), "VWAP0": _div(vw, c),
    }


def _rolling(s: dict[str, np.ndarray], r: dict[str, _Roll], ts: np.ndarray, d: int) -> dict[str, np.ndarray]:
    """The 29 rolling operators of window d at dates `ts`."""
    jp = ts + PAD
    c, v = s["close"][:, jp], s["volume"][:, jp]
    out = {f"ROC{d}": _div(s["close"][:, jp - d], c), f"MA{d}": _div(_mean(r["close"], d, jp), c),
           f"STD{d}": _div(_std(r["close"], d, jp), c)}
    slope, r2, resid = _regress(r["time"], c, d, jp)
    out[f"BETA{d}"], out[f"RSQR{d}"], out[f"RESI{d}"] = _div(slope, c), r2, _div(resid, c)
    hmax, imax = _arg(_win(s["high"], d, ts), "max")
    lmin, imin = _arg(_win(s["low"], d, ts), "min")
    out[f"MAX{d}"], out[f"MIN{d}"] = _div(hmax, c), _div(lmin, c)
    wc = _win(s["close"], d, ts)
    qu, qd = _quantiles(wc, (0.8, 0.2))
    out[f"QTLU{d}"], out[f"QTLD{d}"] = _div(qu, c), _div(qd, c)
    out[f"RANK{d}"] = _rank_last(wc)
    out[f"RSV{d}"] = _div(c - lmin, hmax - lmin + EPS)
    out[f"IMAX{d}"], out[f"IMIN{d}"], out[f"IMXD{d}"] = imax / d, imin / d, (imax - imin) / d
    out[f"CORR{d}"] = _corr(r["corr"], d, jp)
    out[f"CORD{d}"] = _corr(r["cord"], d, jp)
    cntp, cntn = _mean(r["up"], d, jp), _mean(r["down"], d, jp)
    out[f"CNTP{d}"], out[f"CNTN{d}"], out[f"CNTD{d}"] = cntp, cntn, cntp - cntn
    for pre in ("SUM", "VSUM"):
        pos, neg = _sum(r[pre + "P"], d, jp), _sum(r[pre + "N"], d, jp)
        tot = _sum(r[pre + "A"], d, jp) + EPS
        out[f"{pre}P{d}"], out[f"{pre}N{d}"], out[f"{pre}D{d}"] = _div(pos, tot), _div(neg, tot), \
            _div(pos - neg, tot)
    out[f"VMA{d}"] = _div(_mean(r["volume"], d, jp), v + EPS)
    out[f"VSTD{d}"] = _div(_std(r["volume"], d, jp), v + EPS)
    out[f"WVMA{d}"] = _div(_std(r["wv"], d, jp), _mean(r["wv"], d, jp) + EPS)
    return out


def _blocks(panel: Panel, ts: np.ndarray):
    """(offset, block of dates, feature name -> [N, len(block)]) for blocks of CHUNK dates of `ts`: the
    series and their cumulative sums are built once, the window temporaries stay at stocks x 48 x 60."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = _series(panel)
        r = _rolls(s)
        for a in range(0, len(ts), CHUNK):
            block = ts[a:a + CHUNK]
            feats = _kbar(s, block + PAD)
            for d in WINDOWS:
                feats.update(_rolling(s, r, block, d))
            yield a, block, feats


def alpha158_array(panel: Panel, ts: list[int], dtype=np.float32) -> np.ndarray:
    """[N, len(ts), 158] in `FEATURES` order at the panel dates `ts`."""
    ts = np.asarray(ts, dtype=int)
    out = np.empty((panel.listed.shape[0], len(ts), len(FEATURES)), dtype=dtype)
    for a, block, feats in _blocks(panel, ts):
        out[:, a:a + len(block)] = np.stack([feats[f] for f in FEATURES], axis=-1)
    return out


def alpha158_rows(panel: Panel, ts: list[int], mask: np.ndarray,
                  stocks_per_block: int = STOCKS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The features of the (stock, date) cells where `mask` [N, T] holds, at the dates `ts`, as a long
    float32 matrix [R, 158] with their stock and date indices (no dense [N, T, 158] array).

    Rows come in blocks of CHUNK dates, within a block by stock then date. They are computed
    `stocks_per_block` stocks at a time (every feature reads one stock's own series), so the ~50 series
    and cumulative sums held while computing stay at that breadth, not the market's: same rows, same
    values, a fraction of the memory."""
    ts = np.asarray(ts, dtype=int)
    m = mask[:, ts]
    n_blocks = -(-len(ts) // CHUNK)
    # rows of date block b held by stocks before i: where a stock block's rows of date block b start
    per = np.add.reduceat(m, np.arange(0, len(ts), CHUNK), axis=1, dtype=np.int64) if len(ts) \
        else np.zeros((len(m), 0), np.int64)
    before = np.vstack([np.zeros((1, n_blocks), np.int64), np.cumsum(per, axis=0)])
    block_start = np.concatenate([[0], np.cumsum(before[-1])])
    out = np.empty((int(block_start[-1]), len(FEATURES)), dtype=np.float32)
    rows_i = np.empty(len(out), dtype=np.int64)
    rows_t = np.empty(len(out), dtype=np.int64)
    for lo in range(0, len(m), max(1, stocks_per_block)):
        hi = min(lo + max(1, stocks_per_block), len(m))
        sub = Panel(panel.codes[lo:hi], panel.dates, panel.daily[lo:hi], panel.listed[lo:hi], panel.suspended[lo:hi])
        for a, block, feats in _blocks(sub, ts):
            i, k = np.nonzero(m[lo:hi, a:a + len(block)])
            at = block_start[a // CHUNK] + before[lo, a // CHUNK]
            out[at:at + len(i)] = np.stack([feats[f][i, k] for f in FEATURES], axis=-1)
            rows_i[at:at + len(i)] = lo + i
            rows_t[at:at + len(i)] = block[k]
    return out, rows_i, rows_t


def alpha158_features(panel: Panel, ts: list[int]) -> dict[str, np.ndarray]:
    """name -> [N, len(ts)] feature values at the panel dates `ts` (float64)."""
    arr = alpha158_array(panel, ts, np.float64)
    return {k: arr[:, :, j] for j, k in enumerate(FEATURES)}


def alpha158_table(panel: Panel, ts: list[int]) -> pl.DataFrame:
    """code, date and the features (column names lower-case, prefixed `a_`) for listed stocks at `ts`."""
    return long_table(panel, ts, {f"a_{k.lower()}": v for k, v in alpha158_features(panel, ts).items()})
