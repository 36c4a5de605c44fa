"""The Alpha158 peer (Qlib's LightGBM protocol) and model_wd_alpha: point in time, purged validation,
and the blend of the peer with the deep factors."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import duckdb
import numpy as np
import polars as pl
import pytest

from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.market.io import duckdb_reader, table_files
from factor_pipeline.models.baselines import alpha_models, wd_alpha
from factor_pipeline.models.peer import WARMUP, PeerConfig, fit_keys, panel_rows, rolling_peer

FAST = PeerConfig(num_boost_round=40, early_stopping_rounds=5, num_leaves=15, lambda_l1=1.0, lambda_l2=1.0)


@pytest.fixture(scope="module")
def panel(tiny_dir):
    return build_panel(duckdb.connect(), {k: duckdb_reader(v) for k, v in table_files(tiny_dir).items()
                                          if k != "oracle"})


@pytest.fixture(scope="module")
def rows(panel):
    return panel_rows(panel, list(range(WARMUP, len(panel.dates))))


def _predict_dates(panel) -> list[date]:
    return [panel.dates[t].astype(object) for t in signal_dates(panel, date(2017, 1, 2), date(2018, 7, 1))]


def test_rows_are_every_trading_date_with_the_label_z_scored(panel, rows):
    assert len(np.unique(rows.date)) == len(panel.dates) - WARMUP  # every trading date, not weekly
    assert rows.x.shape[1] == 158
    df = pl.DataFrame({"d": rows.date, "y": rows.y}).drop_nans()
    per = df.group_by("d").agg(pl.col("y").mean().alias("m"), pl.col("y").std(ddof=0).alias("s"))
    assert per["m"].abs().max() < 1e-9 and (per["s"] - 1).abs().max() < 1e-9


def test_the_peer_never_sees_a_label_realised_after_its_year_starts(panel, rows):
    pred = _predict_dates(panel)
    s1, fits = rolling_peer(rows, rows, pred, FAST, "alpha158_lgbm")
    assert [f.year for f in fits] == [2017, 2018]
    for f in fits:
        assert f.last_realised < f.first_prediction
        assert f.valid_first >= date(f.year - 1, 7, 1) and f.train_last < f.valid_first
    # purged: the last training label is realised before validation starts
    ok = np.isfinite(rows.y) & ~np.isnat(rows.realised_on)
    first = np.datetime64(fits[1].first_prediction, "D")
    late = ok & (rows.realised_on >= first)
    scrambled = replace(rows, y=np.where(late, np.random.default_rng(3).normal(size=len(rows.y)), rows.y))
    s2, _ = rolling_peer(scrambled, scrambled, pred, FAST, "alpha158_lgbm")
    in_2018 = pl.col("date") >= date(2018, 1, 1)
    assert s1.filter(in_2018).equals(s2.filter(in_2018))
    assert s1["date"].n_unique() == len(pred) and s1["score"].is_finite().all()


def test_model_wd_alpha_is_the_mean_of_the_z_scored_peer_and_deep_scores(panel, rows):
    """By hand on the rows, and a weak factor that holds the label lifts it far above the peer."""
    pred = _predict_dates(panel)
    rng = np.random.default_rng(0)
    labelled = pl.DataFrame({"code": rows.code, "date": rows.date, "y": rows.y_raw}).with_columns(
        pl.col("date").cast(pl.Date)).filter(pl.col("date").is_in(pred)).drop_nans()
    n = labelled.height
    weak = pl.concat([labelled.select("code", "date", dataset=pl.lit("week"),
                                      output=pl.col("y") + pl.Series(rng.normal(scale=0.05, size=n))),
                      labelled.select("code", "date", dataset=pl.lit("day"), output=pl.Series(rng.normal(size=n)))])
    peer, _ = rolling_peer(rows, rows, pred, FAST, "alpha158_lgbm")
    got = wd_alpha(peer, weak, pred)
    z = lambda f, c: (f[c] - f[c].mean()) / f[c].std()  # noqa: E731
    d0 = labelled["date"].max()
    p0 = peer.filter(pl.col("date") == d0)
    w0 = weak.filter(pl.col("date") == d0).pivot("dataset", index="code", values="output")
    w0 = w0.with_columns(deep=(z(w0, "week") + z(w0, "day")) / 2)
    hand = p0.with_columns(zp=z(p0, "score")).join(w0.with_columns(zd=z(w0, "deep")), on="code")
    mine = got.filter(pl.col("date") == d0).join(hand, on="code")
    np.testing.assert_allclose(mine["score"].to_numpy(), ((mine["zp"] + mine["zd"]) / 2).to_numpy(), atol=1e-9)

    def ic(s):
        j = s.join(labelled, on=["code", "date"])
        return j.group_by("date").agg(pl.corr(pl.col("score").rank(), pl.col("y").rank()).alias("ic"))["ic"].mean()

    assert ic(got) > ic(peer) + 0.2


def test_alpha_models_need_week_and_day_for_model_wd_alpha(panel):
    pred = _predict_dates(panel)[-4:]
    res = alpha_models(panel, pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "dataset": pl.String}),
                       pred, FAST)
    assert set(res) == {"alpha158_lgbm"}
    assert res["alpha158_lgbm"][0]["date"].n_unique() == len(pred)


def _cut(panel, end: date):
    """The panel as a run ending at `end` loads it."""
    from factor_pipeline.datasets.panel import Panel

    n = int(np.searchsorted(panel.dates, np.datetime64(end, "D"), side="right"))
    return Panel(panel.codes, panel.dates[:n], panel.daily[:, :n].copy(), panel.listed[:, :n], panel.suspended[:, :n],
                 {k: v[:, :n] for k, v in panel.members.items()}, universe=panel.universe)


def test_fit_keys_see_the_fits_data_and_nothing_after_it(panel):
    """A year's key is the same from a panel that ends later (the full run) or earlier (the Friday job), and
    changes when a bar, label or row the fit reads changes."""
    full = fit_keys(panel, [2018], FAST, "alpha158_lgbm")[2018]
    assert fit_keys(_cut(panel, date(2018, 1, 20)), [2018], FAST, "alpha158_lgbm")[2018] == full
    later = _cut(panel, date(2018, 6, 30))
    i = int(np.flatnonzero(later.listed[:, -1])[0])
    later.daily[i, -1, 3] *= 1.01  # a close in 2018: after every label the fit may see
    assert fit_keys(later, [2018], FAST, "alpha158_lgbm")[2018] == full
    t = int(np.searchsorted(panel.dates, np.datetime64("2017-03-01", "D")))
    i = int(np.flatnonzero(later.listed[:, t])[0])
    later.daily[i, t, 3] *= 1.01  # a close the 2018 fit's features and labels read
    assert fit_keys(later, [2018], FAST, "alpha158_lgbm")[2018] != full
    assert fit_keys(panel, [2018], replace(FAST, seed=1), "alpha158_lgbm")[2018] != full


def test_cached_fits_score_one_week_as_the_full_run_did(panel, tmp_path):
    """The full run fits and caches; a run over one week of a shorter panel finds every fit by its key,
    computes Alpha158 only at its dates and gives the full run's scores; a changed label refits."""
    pred = _predict_dates(panel)
    no_weak = pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "dataset": pl.String})
    scores, fits = alpha_models(panel, no_weak, pred, FAST, tmp_path)["alpha158_lgbm"]
    assert [f.year for f in fits] == [2017, 2018] and not any(f.reused for f in fits)
    week = pred[-2:]
    short = _cut(panel, week[-1])
    s2, f2 = alpha_models(short, no_weak, week, FAST, tmp_path)["alpha158_lgbm"]
    assert all(f.reused for f in f2) and [f.year for f in f2] == [2018]
    assert [(f.train_rows, f.best_iteration, f.valid_first) for f in f2] == \
        [(f.train_rows, f.best_iteration, f.valid_first) for f in fits if f.year == 2018]
    want = scores.filter(pl.col("date").is_in(week)).sort("date", "code")
    assert s2.sort("date", "code").equals(want) and want.height > 0
    t = int(np.searchsorted(short.dates, np.datetime64("2017-05-02", "D")))
    short.daily[:, t, 4] *= 1.02  # every vwap of a day: the labels around it change
    _, f3 = alpha_models(short, no_weak, week, FAST, tmp_path)["alpha158_lgbm"]
    assert not any(f.reused for f in f3)
