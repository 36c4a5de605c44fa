"""The XGBoost combiner: Model1-4 as the report defines them, non-linear gains, no look-ahead."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from factor_pipeline.evaluation.ic import rank_ic
from factor_pipeline.models.combiner import (
    MODELS,
    REPORT_MODELS,
    CombinerConfig,
    cross_sectional_z,
    feature_frame,
    rolling_scores,
)


def _market(seed: int = 0, n: int = 150, weeks: int = 160):
    """Weak factors of two datasets and a label that needs both, non-linearly."""
    rng = np.random.default_rng(seed)
    dates = [date(2016, 1, 8) + timedelta(weeks=w) for w in range(weeks)]
    rows, labels = [], []
    for d in dates:
        a, b = rng.normal(size=n), rng.normal(size=n)
        y = np.tanh(a) * (b > 0) + 0.5 * b - 0.3 * a**2 + rng.normal(scale=1.0, size=n)
        codes = [f"{i:06d}.SH" for i in range(n)]
        rows.append(pl.DataFrame({"code": codes, "date": d, "dataset": "day", "z_1": a, "output": a}))
        rows.append(pl.DataFrame({"code": codes, "date": d, "dataset": "week", "z_1": b, "output": b}))
        labels.append(pl.DataFrame({"code": codes, "date": d, "y_std": (y - y.mean()) / y.std(), "y_raw": y,
                                    "realised_on": d + timedelta(days=15)}))
    return pl.concat(rows), pl.concat(labels), dates


def test_models_are_the_reports():
    assert {m: MODELS[m] for m in REPORT_MODELS} == {
        "model1": ("day", "ms", "l2"), "model2": ("day", "msnew", "l2"),
        "model3": ("week", "day", "ms", "l2"), "model4": ("week", "day", "msnew", "l2")}
    assert MODELS["model_wd"] == ("week", "day")


def test_combination_beats_each_input_out_of_sample():
    weak, labels, dates = _market()
    feats = feature_frame(weak, ("week", "day"))
    pred = [d for d in dates if d.year == 2018]
    scores, fits = rolling_scores(feats, labels, pred, CombinerConfig(n_estimators=100, train_years=2))
    assert [f.year for f in fits] == [2018]
    j = scores.join(labels, on=["code", "date"]).join(feats, on=["code", "date"])
    ic = {k: np.mean([rank_ic(g[k].to_numpy(), g["y_raw"].to_numpy()) for _, g in j.group_by("date")])
          for k in ("score", "day_output", "week_output")}
    assert ic["score"] > max(ic["day_output"], ic["week_output"]) + 0.02


def test_never_trains_on_a_label_realised_after_the_prediction_date():
    weak, labels, dates = _market(seed=1)
    feats = feature_frame(weak, ("week", "day"))
    pred = [d for d in dates if d.year == 2018]
    cfg = CombinerConfig(n_estimators=50, train_years=2)
    s1, fits = rolling_scores(feats, labels, pred, cfg)
    assert all(f.last_realised < date(f.year, 1, 1) + timedelta(days=7) for f in fits)
    assert fits[0].last_realised < min(pred)
    # labels realised on or after the first prediction date are scrambled: the scores stay the same
    late = pl.col("realised_on") >= min(pred)
    noise = pl.Series(np.random.default_rng(9).normal(size=labels.height))
    s2, _ = rolling_scores(feats, labels.with_columns(pl.when(late).then(noise).otherwise(pl.col("y_std"))
                                                      .alias("y_std")), pred, cfg)
    assert s1.equals(s2)


def test_a_first_year_learns_from_its_own_out_of_fold_rows_and_never_from_a_later_label():
    """Only 2018 is predicted, so no earlier year's predicted rows exist: without out-of-fold rows the combiner has
    nothing to learn from; with the period's out-of-fold weak factors of 2016-2017 it fits on exactly those rows
    whose labels were realised before 2018, and neither the earlier predicted rows nor out-of-fold rows of another
    period nor labels realised in 2018 change its scores."""
    weak, labels, dates = _market(seed=4)
    pred = [d for d in dates if d.year == 2018]
    feats = feature_frame(weak.filter(pl.col("date").dt.year() == 2018), ("week", "day"))
    oof = feature_frame(weak.filter(pl.col("date").dt.year() < 2018).with_columns(period=pl.lit("2018")),
                        ("week", "day"))
    cfg = CombinerConfig(n_estimators=50, train_years=2)
    none, no_fits = rolling_scores(feats, labels, pred, cfg)
    assert none.height == 0 and no_fits == []
    s1, fits = rolling_scores(feats, labels, pred, cfg, oof=oof)
    assert [(f.period, f.out_of_fold) for f in fits] == [("2018", True)]
    realised = oof.join(labels, on=["code", "date"]).filter(pl.col("realised_on") < date(2018, 1, 1))
    assert fits[0].train_rows == realised.height and fits[0].last_realised < min(pred)
    assert s1["date"].n_unique() == len(pred)
    other = oof.with_columns(period=pl.lit("2019"), week_output=-pl.col("week_output"))
    late = pl.col("realised_on") >= date(2018, 1, 1)
    noisy = labels.with_columns(pl.when(late).then(pl.Series(np.random.default_rng(5).normal(size=labels.height)))
                                .otherwise(pl.col("y_std")).alias("y_std"))
    earlier = feature_frame(weak, ("week", "day")).with_columns(  # earlier predicted rows: not what it learns from
        day_output=pl.when(pl.col("date").dt.year() < 2018).then(0.0).otherwise(pl.col("day_output")))
    s2, _ = rolling_scores(earlier, noisy, pred, cfg, oof=pl.concat([oof, other]))
    assert s1.equals(s2)


def test_a_few_weeks_scored_alone_equal_the_same_weeks_inside_their_year():
    """A UI backfill of three weeks must give those weeks the scores the CLI's whole-year run gave them."""
    weak, labels, dates = _market(seed=2)
    feats = feature_frame(weak, ("week", "day"))
    year = [d for d in dates if d.year == 2018]
    cfg = CombinerConfig(n_estimators=50, train_years=2)
    whole, fits = rolling_scores(feats, labels, year, cfg)
    alone, fits_alone = rolling_scores(feats, labels, year[-3:], cfg)
    assert fits_alone[0].train_rows == fits[0].train_rows and fits[0].first_prediction == date(2018, 1, 1)
    inside = whole.filter(pl.col("date").is_in(year[-3:])).sort("date", "code")
    assert alone.sort("date", "code").equals(inside)


def test_feature_frame_needs_every_dataset():
    weak, _, _ = _market(weeks=3)
    f = feature_frame(weak, ("week", "day"))
    assert f.columns == ["code", "date", "week_z_1", "week_output", "day_z_1", "day_output"]
    try:
        feature_frame(weak, ("week", "ms"))
    except ValueError as exc:
        assert "ms" in str(exc)
    else:
        raise AssertionError("a missing dataset must be an error")


def test_models_without_their_datasets_are_reported_not_runnable():
    from factor_pipeline.models.scores import model_scores

    weak, labels, dates = _market(weeks=120)  # only `day` and `week`, as on a daily-only market
    res = model_scores(weak, labels, [d for d in dates if d.year == 2018], CombinerConfig(n_estimators=20))
    assert set(res.not_runnable) == {"model1", "model2", "model3", "model4"}
    assert "ms" in res.not_runnable["model1"] and "msnew" in res.not_runnable["model4"]
    assert set(res.scores["model"].unique()) == {"model_wd"}  # the daily-only combination still runs
    full = pl.concat([weak] + [weak.filter(pl.col("dataset") == "day").with_columns(dataset=pl.lit(d))
                               for d in ("ms", "msnew", "l2")])
    res = model_scores(full, labels, [d for d in dates if d.year == 2018], CombinerConfig(n_estimators=20))
    assert res.not_runnable == {} and set(res.scores["model"].unique()) == set(MODELS)
    assert all(len(v) > 10 for v in res.oos_ic.values())


def test_the_combiner_falls_back_to_the_mean_when_the_tree_cannot_beat_it():
    """Two weak factors that each carry the same additive signal, plus noise columns: the purged time
    folds pick the mean (or the blend), and the score is no worse than the better input."""
    rng = np.random.default_rng(4)
    dates = [date(2016, 1, 8) + timedelta(weeks=w) for w in range(160)]
    rows, labels = [], []
    for d in dates:
        s = rng.normal(size=150)
        y = s + rng.normal(scale=6.0, size=150)
        codes = [f"{i:06d}.SH" for i in range(150)]
        for ds in ("day", "week"):
            out = s + rng.normal(scale=1.0, size=150)
            rows.append(pl.DataFrame({"code": codes, "date": d, "dataset": ds, "z_1": rng.normal(size=150),
                                      "z_2": rng.normal(size=150), "output": out}))
        labels.append(pl.DataFrame({"code": codes, "date": d, "y_std": (y - y.mean()) / y.std(), "y_raw": y,
                                    "realised_on": d + timedelta(days=15)}))
    weak, lab = pl.concat(rows), pl.concat(labels)
    feats = feature_frame(weak, ("week", "day"))
    pred = [d for d in dates if d.year == 2018]
    scores, fits = rolling_scores(feats, lab, pred, CombinerConfig(n_estimators=200, train_years=2))
    assert fits[0].chosen in ("mean", "blend") and set(fits[0].valid_rank_ic) == {"tree", "mean", "blend"}
    j = scores.join(lab, on=["code", "date"]).join(feats, on=["code", "date"])
    ic = {k: np.mean([rank_ic(g[k].to_numpy(), g["y_raw"].to_numpy()) for _, g in j.group_by("date")])
          for k in ("score", "day_output", "week_output")}
    assert ic["score"] >= max(ic["day_output"], ic["week_output"]) - 0.005
    tree_only, _ = rolling_scores(feats, lab, pred, CombinerConfig(n_estimators=200, train_years=2, select=False))
    jt = tree_only.join(lab, on=["code", "date"])
    tree_ic = np.mean([rank_ic(g["score"].to_numpy(), g["y_raw"].to_numpy()) for _, g in jt.group_by("date")])
    assert ic["score"] > tree_ic


def test_a_non_linear_market_keeps_the_tree():
    weak, labels, dates = _market()
    feats = feature_frame(weak, ("week", "day"))
    _, fits = rolling_scores(feats, labels, [d for d in dates if d.year == 2018],
                             CombinerConfig(n_estimators=100, train_years=2))
    assert fits[0].chosen in ("tree", "blend") and fits[0].valid_rank_ic["tree"] > fits[0].valid_rank_ic["mean"]


def _refit_market(flip: bool, seed: int = 3, n: int = 150):
    """Weekly rows 2016-2018 of two datasets: each has a stable `output` (a weak link to the label) and a
    latent z_1. Day's z_1 drives the label strongly; with `flip` its sign changes every year, as a refit
    network's latent axis may, else it holds."""
    rng = np.random.default_rng(seed)
    dates = [date(2016, 1, 8) + timedelta(weeks=w) for w in range(156)]
    codes = [f"{i:06d}.SZ" for i in range(n)]
    rows, labels = [], []
    for d in dates:
        a, b, c, e = (rng.normal(size=n) for _ in range(4))
        sign = -1.0 if flip and d.year % 2 else 1.0
        y = 0.3 * a + 0.3 * b + sign * c + rng.normal(scale=1.0, size=n)
        rows.append(pl.DataFrame({"code": codes, "date": d, "dataset": "day", "z_1": c, "output": a}))
        rows.append(pl.DataFrame({"code": codes, "date": d, "dataset": "week", "z_1": e, "output": b}))
        labels.append(pl.DataFrame({"code": codes, "date": d, "y_std": (y - y.mean()) / y.std(), "y_raw": y,
                                    "realised_on": d + timedelta(days=15)}))
    return feature_frame(pl.concat(rows), ("week", "day")), pl.concat(labels), dates


def _ic(scores: pl.DataFrame, labels: pl.DataFrame, col: str = "score") -> float:
    j = scores.join(labels, on=["code", "date"])
    return float(np.mean([rank_ic(g[col].to_numpy(), g["y_raw"].to_numpy()) for _, g in j.group_by("date")]))


def test_walk_forward_takes_the_mean_when_the_latent_factors_do_not_survive_a_refit():
    feats, labels, dates = _refit_market(flip=True)
    pred = [d for d in dates if d.year == 2018]
    cfg = CombinerConfig(n_estimators=60, train_years=2, validation="walk_forward")
    scores, fits = rolling_scores(feats, labels, pred, cfg)
    assert fits[0].chosen == "mean" and fits[0].valid_rank_ic["tree"] < fits[0].valid_rank_ic["mean"]
    mean = cross_sectional_z(feats.filter(pl.col("date").is_in(pred)), ["day_output", "week_output"]).select(
        "code", "date", score=(pl.col("day_output") + pl.col("week_output")) / 2)  # the outputs z-scored per date
    both = scores.join(mean, on=["code", "date"], suffix="_mean")
    assert both.height == scores.height and (both["score"] - both["score_mean"]).abs().max() < 1e-9
    # a window of one year holds no refit to validate across: the mean, with nothing measured
    _, single = rolling_scores(feats, labels, pred, CombinerConfig(n_estimators=60, train_years=1,
                                                                   validation="walk_forward"))
    assert single[0].chosen == "mean" and single[0].valid_rank_ic == {}


def test_walk_forward_keeps_the_tree_when_what_it_learns_holds_across_a_refit():
    feats, labels, dates = _refit_market(flip=False)
    pred = [d for d in dates if d.year == 2018]
    scores, fits = rolling_scores(feats, labels, pred, CombinerConfig(n_estimators=60, train_years=2,
                                                                      validation="walk_forward"))
    assert fits[0].chosen in ("tree", "blend")
    mean = feats.filter(pl.col("date").is_in(pred)).select(
        "code", "date", score=(pl.col("day_output") + pl.col("week_output")) / 2)
    assert _ic(scores, labels) > _ic(mean, labels) + 0.1


def test_walk_forward_keeps_the_mean_unless_the_gain_is_clear_date_by_date():
    """The tree's gain over the mean is measured on dates whose labels do not overlap, as a t statistic (checked
    against scipy); below `walk_forward_t` standard errors the mean stays, however the means compare."""
    from scipy.stats import ttest_1samp

    from factor_pipeline.models.combiner import _gain_t, _non_overlapping, daily_rank_ic

    feats, labels, dates = _refit_market(flip=False)
    pred = [d for d in dates if d.year == 2018]
    _, fits = rolling_scores(feats, labels, pred, CombinerConfig(n_estimators=60, train_years=2,
                                                                 validation="walk_forward"))
    t = fits[0].valid_rank_ic["tree_gain_t"]
    assert fits[0].chosen in ("tree", "blend") and t >= 2
    _, strict = rolling_scores(feats, labels, pred, CombinerConfig(n_estimators=60, train_years=2,
                                                                   validation="walk_forward", walk_forward_t=t + 1e-6))
    assert strict[0].chosen in ("mean", "blend") and strict[0].valid_rank_ic["tree_gain_t"] == t
    if strict[0].chosen == "blend":
        assert strict[0].valid_rank_ic["blend_gain_t"] >= t + 1e-6
    # the dates: each after the previous one's labels were realised (weekly rows, labels 15 days on: every 3rd)
    rows = labels.filter(pl.col("date").dt.year() == 2017)
    apart = _non_overlapping(rows)
    assert all(b > a + timedelta(days=15) for a, b in zip(apart, apart[1:], strict=False))
    assert len(apart) == len(rows["date"].unique()[::3])
    # the statistic by hand: two per-date IC series, the gain's one-sample t on those dates
    rng = np.random.default_rng(0)
    df = rows.with_columns(a=pl.col("y_std") + rng.normal(scale=3.0, size=rows.height),
                           b=pl.col("y_std") + rng.normal(scale=4.0, size=rows.height))
    ia, ib = daily_rank_ic(df, "a", "y_std"), daily_rank_ic(df, "b", "y_std")
    gain = ia.join(ib, on="date").filter(pl.col("date").is_in(apart)).select(pl.col("ic") - pl.col("ic_right"))
    assert abs(_gain_t(ia, ib, apart) - ttest_1samp(gain.to_series().to_numpy(), 0.0).statistic) < 1e-9


def test_the_combiner_validation_follows_the_market_unless_the_launch_sets_it():
    from factor_pipeline.orchestration.assets.scores import ScoresConfig

    assert ScoresConfig().combiner("real").validation == "walk_forward"  # real daily bars (chosen on 2018)
    assert ScoresConfig().combiner("demo").validation == ScoresConfig().combiner("tiny").validation == "folds"
    assert ScoresConfig(validation="folds").combiner("real").validation == "folds"


def test_a_periods_fit_is_reused_from_the_cache_and_new_rows_fit_anew(tmp_path):
    """A weekly run reuses its year's fit: a second run over a few weeks of the year reads the fit the first
    stored (the same scores, nothing fitted), while a corrected label in the training window fits anew."""
    from factor_pipeline.models.fit_cache import CombinerCache

    weak, labels, dates = _market(seed=5)
    feats = feature_frame(weak, ("week", "day"))
    year = [d for d in dates if d.year == 2018]
    cfg = CombinerConfig(n_estimators=30, train_years=2)
    cache = CombinerCache(tmp_path)
    whole, fits = rolling_scores(feats, labels, year, cfg, cache)
    assert [f.reused for f in fits] == [False] and len(list(tmp_path.glob("*.pkl"))) == 1
    weeks, fits2 = rolling_scores(feats, labels, year[-3:], cfg, cache)
    assert [f.reused for f in fits2] == [True] and fits2[0].chosen == fits[0].chosen
    assert weeks.sort("date", "code").equals(whole.filter(pl.col("date").is_in(year[-3:])).sort("date", "code"))
    assert fits2[0].train_rank_ic == fits[0].train_rank_ic
    fixed = labels.with_columns(pl.when((pl.col("date") == dates[60]) & (pl.col("code") == "000001.SH"))
                                .then(pl.col("y_std") + 1.0).otherwise(pl.col("y_std")).alias("y_std"))
    _, fits3 = rolling_scores(feats, fixed, year[-3:], cfg, cache)
    assert [f.reused for f in fits3] == [False] and len(list(tmp_path.glob("*.pkl"))) == 2
