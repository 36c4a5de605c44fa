"""A point-in-time multi-factor risk model from bars: style and industry exposures, factor covariance
(exponentially weighted) and shrunk specific risk.

Styles at signal date t (trailing windows only), standardised per date to a cap-weighted mean of 0
and an equal-weighted sd of 1 (clipped at +-3):
size                 log float market cap
beta                 slope of the stock's daily return on the cap-weighted market over 120 days
momentum             log return from t-252 to t-21
residual_volatility  sd of (return - beta * market) over 60 days
liquidity            log mean turnover over 20 days
nonlinear_size       size^3, cap-weighted orthogonal to size
short_term_reversal  5-day return
Factor returns: each day's stock returns regressed (weights sqrt(cap)) on the industry dummies and
the styles of the latest signal date before that day. Covariance at t: factor returns up to t,
half-life 60 days, over the last 252 days, x252 (annual). Specific variance: the same EWMA of each
stock's residuals, shrunk 30% toward the cross-sectional median.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.datasets.windows import daily_returns, lag, stat, window

STYLES = ("size", "beta", "momentum", "residual_volatility", "liquidity", "nonlinear_size", "short_term_reversal")
HALF_LIFE, COV_DAYS, SHRINK = 60, 252, 0.3


def _standardise(x: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """[N] -> cap-weighted mean 0, sd 1, clipped at +-3, missing -> 0 (the cap-weighted average stock)."""
    ok = np.isfinite(x) & np.isfinite(cap) & (cap > 0)
    out = np.zeros_like(x)
    if ok.sum() < 3:
        return out
    for _ in range(2):
        mu = np.average(x[ok], weights=cap[ok])
        sd = x[ok].std()
        z = (x - mu) / sd if sd > 0 else np.zeros_like(x)
        x = np.clip(z, -3, 3)
    out[ok] = x[ok]
    return out


def market_returns(panel: Panel) -> np.ndarray:
    """[T] cap-weighted (previous close float cap) mean return of the traded stocks."""
    r = daily_returns(panel.field("close").astype(np.float64) * panel.field("adj_factor"))
    cap = np.full(r.shape, np.nan)
    cap[:, 1:] = (panel.field("close") * panel.field("float_shares"))[:, :-1]
    ok = np.isfinite(r) & np.isfinite(cap) & ~panel.suspended
    w = np.where(ok, cap, 0.0)
    with np.errstate(invalid="ignore"):
        return np.where(w.sum(0) > 0, (np.where(ok, r, 0) * w).sum(0) / w.sum(0), np.nan)


def style_exposures(panel: Panel, ts: list[int]) -> np.ndarray:
    """[N, len(ts), len(STYLES)] standardised style exposures at the panel dates `ts`."""
    ts = np.asarray(ts, dtype=int)
    ac = panel.field("close").astype(np.float64) * panel.field("adj_factor")
    r = daily_returns(ac)
    rm = market_returns(panel)[None, :].repeat(r.shape[0], axis=0)
    cap = (panel.field("close") * panel.field("float_shares")).astype(np.float64)
    rw, mw = window(r, 120, ts), window(rm, 120, ts)
    both = np.isfinite(rw) & np.isfinite(mw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # stocks without a single day in the window
        rwc = np.where(both, rw - np.nanmean(np.where(both, rw, np.nan), -1, keepdims=True), np.nan)
        mwc = np.where(both, mw - np.nanmean(np.where(both, mw, np.nan), -1, keepdims=True), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where(both.mean(-1) >= 0.8, np.nansum(rwc * mwc, -1) / np.nansum(mwc * mwc, -1), np.nan)
    resid = window(r, 60, ts) - beta[..., None] * window(rm, 60, ts)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = {
            "size": np.log(cap[:, ts]),
            "beta": beta,
            "momentum": np.log(lag(ac, 21, ts) / lag(ac, 252, ts)),
            "residual_volatility": stat(resid, "std"),
            "liquidity": np.log(stat(window(panel.field("turnover"), 20, ts), "mean")),
            "short_term_reversal": ac[:, ts] / lag(ac, 5, ts) - 1,
        }
    out = np.zeros((len(panel.codes), len(ts), len(STYLES)))
    for k in range(len(ts)):
        c = cap[:, ts[k]]
        z = {name: _standardise(np.where(panel.listed[:, ts[k]], v[:, k], np.nan), c) for name, v in raw.items()}
        s3 = z["size"] ** 3
        ok = np.isfinite(c) & (c > 0) & panel.listed[:, ts[k]]
        if ok.sum() > 3:  # orthogonalise size^3 to size (cap-weighted)
            w = c[ok]
            b = np.sum(w * s3[ok] * z["size"][ok]) / max(np.sum(w * z["size"][ok] ** 2), 1e-12)
            s3 = s3 - b * z["size"]
        z["nonlinear_size"] = _standardise(np.where(ok, s3, np.nan), c)
        out[:, k] = np.stack([z[s] for s in STYLES], axis=-1)
    return out


@dataclass
class RiskModel:
    """Exposures at each signal date and the daily factor and specific returns behind the covariances."""

    codes: np.ndarray
    industries: list[str]
    industry: np.ndarray  # [N] index into `industries`
    signals: np.ndarray  # [D] panel indices of the signal dates
    styles: np.ndarray  # [N, D, S]
    factor_returns: np.ndarray  # [T, K] (NaN before the first signal)
    specific: np.ndarray  # [N, T] residual returns (NaN where not traded)

    @property
    def factor_names(self) -> list[str]:
        return [f"ind_{i}" for i in self.industries] + list(STYLES)

    def exposures(self, k: int) -> np.ndarray:
        """[N, K] industry dummies and styles at the k-th signal date."""
        dummies = np.zeros((len(self.codes), len(self.industries)))
        dummies[np.arange(len(self.codes)), self.industry] = 1.0
        return np.concatenate([dummies, self.styles[:, k]], axis=1)

    def __post_init__(self) -> None:
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def covariance(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        if t not in self._cache:
            self._cache[t] = self._covariance(t)
        return self._cache[t]

    def _covariance(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(factor covariance [K, K], specific variance [N]) annualised, from days <= t."""
        lo = max(0, t - COV_DAYS + 1)
        f = self.factor_returns[lo:t + 1]
        ok = np.isfinite(f).all(axis=1)
        f, age = f[ok], (t - np.arange(lo, t + 1))[ok]
        w = 0.5 ** (age / HALF_LIFE)
        w = w / w.sum() if len(w) else w
        fc = f - (w[:, None] * f).sum(0) if len(f) else f
        cov = (fc * w[:, None]).T @ fc * 252 if len(f) > 1 else np.eye(self.factor_returns.shape[1]) * 1e-4
        e = self.specific[:, lo:t + 1]
        ew = 0.5 ** ((t - np.arange(lo, t + 1)) / HALF_LIFE)
        fin = np.isfinite(e)
        with np.errstate(invalid="ignore", divide="ignore"):
            own = (np.where(fin, e * e, 0) * ew).sum(1) / (fin * ew).sum(1) * 252
        enough = fin.sum(1) >= 20
        med = np.nanmedian(own[enough]) if enough.any() else 0.09
        spec = np.where(enough, (1 - SHRINK) * own + SHRINK * med, med)
        return cov, spec


def build_risk_model(panel: Panel, industry: np.ndarray, industries: list[str], signals: list[int]) -> RiskModel:
    """Exposures at `signals` and daily factor returns between them (each day uses the latest earlier signal)."""
    sig = np.asarray(signals, dtype=int)
    styles = style_exposures(panel, sig)
    r = daily_returns(panel.field("close").astype(np.float64) * panel.field("adj_factor"))
    cap = (panel.field("close") * panel.field("float_shares")).astype(np.float64)
    n_t = r.shape[1]
    model = RiskModel(panel.codes, industries, industry, sig, styles,
                      np.full((n_t, len(industries) + len(STYLES)), np.nan), np.full(r.shape, np.nan))
    for k, s in enumerate(sig):  # days (s, next signal]: a regression per day, vectorised over stocks
        x = model.exposures(k)
        end = sig[k + 1] if k + 1 < len(sig) else n_t - 1
        for d in range(s + 1, end + 1):
            ok = np.isfinite(r[:, d]) & ~panel.suspended[:, d] & np.isfinite(cap[:, s]) & panel.listed[:, s]
            if ok.sum() <= x.shape[1]:
                continue
            sw = np.sqrt(cap[ok, s])
            coef, *_ = np.linalg.lstsq(x[ok] * sw[:, None], r[ok, d] * sw, rcond=None)
            model.factor_returns[d] = coef
            model.specific[ok, d] = r[ok, d] - x[ok] @ coef
    return model


def bias_statistic(model: RiskModel, panel: Panel, ks: list[int], portfolios: int = 20, seed: int = 0) -> float:
    """sd over (week, portfolio) of realised next-week active return / predicted active risk, for random
    long-short portfolios of traded stocks: about 1 when the model's risk is right."""
    ac = panel.field("close").astype(np.float64) * panel.field("adj_factor")
    rng = np.random.default_rng(seed)
    z = []
    for k in ks:
        if k + 1 >= len(model.signals):
            continue
        t, t2 = int(model.signals[k]), int(model.signals[k + 1])
        cov, spec = model.covariance(t)
        x = model.exposures(k)
        r = ac[:, t2] / ac[:, t] - 1
        ok = panel.listed[:, t] & np.isfinite(r) & ~panel.suspended[:, t]
        for _ in range(portfolios):
            a = np.where(ok, rng.normal(size=len(ok)), 0) * (rng.random(len(ok)) < 0.3)
            if not np.abs(a).sum():
                continue
            a = a / np.abs(a).sum()
            sigma = np.sqrt((a @ x @ cov @ x.T @ a + (spec * a * a).sum()) * (t2 - t) / 252)
            z.append(np.sum(a * np.where(ok, r, 0)) / sigma)
    return float(np.std(z)) if z else float("nan")


def risk_tables(model: RiskModel, panel: Panel, ks: list[int]) -> dict[str, pl.DataFrame]:
    """What the risk_model asset stores for the signal dates `ks`: exposures, factor covariance, specific variance."""
    names = model.factor_names
    exp, cov, spec = [], [], []
    for k in ks:
        t = int(model.signals[k])
        d = panel.dates[t]
        c, s = model.covariance(t)
        live = panel.listed[:, t]
        exp.append(pl.DataFrame({"code": panel.codes[live], "date": np.repeat(d, live.sum()),
                                 "industry": np.asarray(model.industries)[model.industry[live]],
                                 **{st: model.styles[live, k, j] for j, st in enumerate(STYLES)}}))
        i, j = np.triu_indices(len(names))
        cov.append(pl.DataFrame({"date": np.repeat(d, len(i)), "factor_i": np.asarray(names)[i],
                                 "factor_j": np.asarray(names)[j], "cov": c[i, j]}))
        spec.append(pl.DataFrame({"code": panel.codes[live], "date": np.repeat(d, live.sum()),
                                  "specific_var": s[live]}))
    cast = pl.col("date").cast(pl.Date)
    return {"risk_exposures": pl.concat(exp).with_columns(cast), "risk_factor_cov": pl.concat(cov).with_columns(cast),
            "risk_specific": pl.concat(spec).with_columns(cast)}


class StoredRisk:
    """The risk model read back from its tables, with the interface `enhance` uses (signals, industries,
    exposures(k), covariance(t)) on a panel's codes and dates."""

    def __init__(self, tables: dict[str, pl.DataFrame], panel: Panel, industries: list[str]):
        self.industries = industries
        self.codes = panel.codes
        e = tables["risk_exposures"]
        dates = np.sort(e["date"].unique().to_numpy().astype("datetime64[D]"))
        self.signals = np.searchsorted(panel.dates, dates)
        if not (panel.dates[np.clip(self.signals, 0, len(panel.dates) - 1)] == dates).all():
            raise ValueError("risk_exposures has dates that are not trading dates of the panel")
        n, k = len(panel.codes), len(industries) + len(STYLES)
        self._x = np.zeros((len(dates), n, k))
        self._spec = np.full((len(dates), n), np.nan)
        self._cov = np.zeros((len(dates), k, k))
        names = [f"ind_{i}" for i in industries] + list(STYLES)
        pos = {f: j for j, f in enumerate(names)}
        di = np.searchsorted(dates, e["date"].to_numpy().astype("datetime64[D]"))
        ci = np.searchsorted(panel.codes, e["code"].to_numpy())
        ind = np.searchsorted(industries, e["industry"].to_numpy())
        self._x[di, ci, ind] = 1.0
        for j, st in enumerate(STYLES):
            self._x[di, ci, len(industries) + j] = e[st].to_numpy()
        s = tables["risk_specific"]
        self._spec[np.searchsorted(dates, s["date"].to_numpy().astype("datetime64[D]")),
                   np.searchsorted(panel.codes, s["code"].to_numpy())] = s["specific_var"].to_numpy()
        c = tables["risk_factor_cov"]
        cd = np.searchsorted(dates, c["date"].to_numpy().astype("datetime64[D]"))
        fi = np.array([pos[f] for f in c["factor_i"].to_list()])
        fj = np.array([pos[f] for f in c["factor_j"].to_list()])
        self._cov[cd, fi, fj] = c["cov"].to_numpy()
        self._cov[cd, fj, fi] = c["cov"].to_numpy()
        med = np.nanmedian(self._spec, axis=1, keepdims=True)
        self._spec = np.where(np.isfinite(self._spec), self._spec, med)  # names not in the table: the median
        self._by_t = {int(t): j for j, t in enumerate(self.signals)}

    @property
    def nbytes(self) -> int:
        return int(self._x.nbytes + self._spec.nbytes + self._cov.nbytes)

    def exposures(self, k: int) -> np.ndarray:
        return self._x[k]

    def covariance(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        j = self._by_t[int(t)]
        return self._cov[j], self._spec[j]
