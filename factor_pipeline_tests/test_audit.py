"""The stage invariants behind the Dagster asset checks, and the retraining cadence a user can set."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from factor_pipeline.audit.checks import constraint_audit, every_date_scored, finite_scores, labels_before_prediction
from factor_pipeline.models.cadence import group_by_period, period_of
from factor_pipeline.models.combiner import CombinerConfig, CombinerFit, feature_frame, rolling_scores
from factor_pipeline_tests.test_combiner import _market


def test_finite_scores_names_the_offending_rows():
    t = pl.DataFrame({"code": ["a", "b", "c"], "date": [date(2020, 1, 3)] * 3, "model": "model1",
                      "score": [0.1, float("nan"), None]})
    ok, details = finite_scores(t)
    assert not ok and details["non_finite"] == 2 and "'b'" in details["first_offending_rows"]
    assert finite_scores(t.filter(pl.col("code") == "a"))[0]


def test_every_date_scored_lists_the_missing_model_dates():
    d1, d2 = date(2020, 1, 3), date(2020, 1, 10)
    t = pl.DataFrame({"code": ["a", "a", "a"], "date": [d1, d2, d1], "model": ["m1", "m1", "m2"], "score": 1.0})
    ok, details = every_date_scored(t, [d1, d2], ["m1", "m2"])
    assert not ok and details["missing"] == f"m2 {d2}"
    assert every_date_scored(t, [d1, d2], ["m1"])[0]


def test_point_in_time_flags_a_fit_that_saw_a_late_label():
    good = CombinerFit(2020, "2020", 100, date(2017, 1, 6), date(2019, 12, 13), date(2019, 12, 31),
                       first_prediction=date(2020, 1, 3))
    late = CombinerFit(2020, "2020", 100, date(2017, 1, 6), date(2019, 12, 27), date(2020, 1, 3),
                       first_prediction=date(2020, 1, 3))
    assert labels_before_prediction([good])[0]
    ok, details = labels_before_prediction([good, late])
    assert not ok and "2020-01-03 >= 2020-01-03" in details["late"]


def test_constraint_audit_checks_the_limits_and_the_budget():
    d = date(2020, 1, 3)
    audit = pl.DataFrame({"index": ["csi300"], "model": ["model1"], "date": [d], "max_violation": [1e-9],
                          "relaxed": [""]})
    w = pl.DataFrame({"index": "csi300", "model": "model1", "date": d, "code": ["a", "b"], "weight": [0.6, 0.4]})
    assert constraint_audit(audit, w)[0]
    assert not constraint_audit(audit.with_columns(max_violation=pl.lit(1e-3)), w)[0]
    ok, details = constraint_audit(audit, w.with_columns(weight=pl.Series([0.7, 0.4])))
    assert not ok and details["weights_off"] == 1
    assert not constraint_audit(audit, w.with_columns(weight=pl.Series([1.1, -0.1])))[0]


def test_retraining_periods():
    assert period_of(date(2019, 8, 2)) == "2019"
    assert period_of(date(2019, 8, 2), 6) == "2019-07" and period_of(date(2019, 6, 28), 6) == "2019-01"
    assert period_of(date(2019, 12, 27), 3) == "2019-10"
    with pytest.raises(ValueError, match="cadence"):
        period_of(date(2019, 1, 4), 5)
    days = [date(2019, 1, 4) + timedelta(weeks=k) for k in range(52)]
    assert list(group_by_period(days, 6)) == ["2019-01", "2019-07"]
    assert sum(len(v) for v in group_by_period(days, 3).values()) == 52


def test_a_six_month_cadence_refits_mid_year_on_labels_realised_before_each_half():
    weak, labels, dates = _market(seed=2)
    feats = feature_frame(weak, ("week", "day"))
    pred = [d for d in dates if d.year == 2018]
    yearly, fits12 = rolling_scores(feats, labels, pred, CombinerConfig(n_estimators=30, train_years=2))
    half, fits6 = rolling_scores(feats, labels, pred, CombinerConfig(n_estimators=30, train_years=2,
                                                                     retrain_months=6))
    assert [f.period for f in fits12] == ["2018"] and [f.period for f in fits6] == ["2018-01", "2018-07"]
    assert all(f.last_realised < f.first_prediction for f in fits6)
    # each fit is anchored on its period's first day (not on the run's first date in it), which precedes
    # the period's first prediction
    assert fits6[1].first_prediction == date(2018, 7, 1) <= min(d for d in pred if d.month >= 7)
    assert fits6[1].train_last > fits6[0].first_prediction  # the second half learns from the first half's labels
    first_half = [d for d in pred if d.month < 7]
    a = yearly.filter(pl.col("date").is_in(first_half)).sort("date", "code")["score"].to_numpy()
    b = half.filter(pl.col("date").is_in(first_half)).sort("date", "code")["score"].to_numpy()
    np.testing.assert_allclose(a, b)  # the first half is the same fit either way
    assert np.isfinite(fits6[0].train_rank_ic) and fits6[0].train_rank_ic > 0
