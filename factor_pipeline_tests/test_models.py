"""Weak-factor networks: the loss by hand, the penalty's effect, the signal found, no look-ahead, determinism."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import duckdb
import numpy as np
import polars as pl
import pytest
import torch

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.labels import HORIZON
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.datasets.weekly import history_start, signal_dates, trading_dates
from factor_pipeline.evaluation.ic import rank_ic
from factor_pipeline.market.io import duckdb_reader, table_files
from factor_pipeline.models.loss import factor_loss
from factor_pipeline.models.network import WeakFactorConfig, WeakFactorNet
from factor_pipeline.models.trainer import (
    TrainConfig,
    TrainData,
    fit,
    for_dataset,
    net_config,
    predict,
    rolling,
    training_dates,
)

FAST = TrainConfig(epochs=3, patience=1, date_stride=3, train_years=2, seed=0)


@pytest.fixture(scope="module")
def panel(tiny_dir):
    con = duckdb.connect()
    return build_panel(con, {k: duckdb_reader(v) for k, v in table_files(tiny_dir).items() if k != "oracle"})


@pytest.fixture(scope="module")
def base(panel):
    return dataset_base(panel)


def _data(panel, base, name, y=None) -> TrainData:
    y = labels_mod.forward_returns(panel) if y is None else y
    m = sample_mask(panel, DATASETS[name].lookback)
    return TrainData(base, m, labels_mod.standardised(y, m), y, panel.codes, panel.dates)


def _late_scrambled(panel, base, name, first: int, seed: int) -> TrainData:
    """The dataset's training data with every label realised on or after panel date `first` replaced by noise."""
    return _scrambled_at(panel, base, name, np.flatnonzero(np.arange(len(panel.dates)) + HORIZON + 1 >= first), seed)


def _scrambled_at(panel, base, name, cols: np.ndarray, seed: int) -> TrainData:
    """The dataset's training data with the labels of panel dates `cols` replaced by noise."""
    y = labels_mod.forward_returns(panel).copy()
    y[:, cols] = np.random.default_rng(seed).normal(size=(y.shape[0], len(cols)))
    return _data(panel, base, name, y)


def _oos_ic(out: pl.DataFrame, data: TrainData, dates: list[int]) -> np.ndarray:
    ics = []
    for t in dates:
        day = out.filter(pl.col("date") == data.dates[t].astype(object))
        i = np.searchsorted(data.codes, day["code"].to_numpy())
        ics.append(rank_ic(day["output"].to_numpy(), data.y_raw[i, t]))
    return np.array(ics)


def test_loss_equals_a_hand_computation():
    rng = np.random.default_rng(0)
    n, k, lam = 7, 3, 2.5
    c, z, y = rng.normal(size=n), rng.normal(size=(n, k)), rng.normal(size=n)
    bn = lambda a: (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5)  # noqa: E731
    zs = bn(z)
    gram = np.array([[sum(zs[i, a] * zs[i, b] for i in range(n)) for b in range(k)] for a in range(k)])
    expect = np.mean((bn(c) - y) ** 2) + lam / (n * k * k) * np.sqrt((gram**2).sum())
    got, parts = factor_loss(torch.tensor(c), torch.tensor(z), torch.tensor(y), lam)
    assert float(got) == pytest.approx(expect, rel=1e-9)
    assert parts["penalty"] == pytest.approx(lam / (n * k * k) * np.linalg.norm(gram), rel=1e-9)


def test_network_shapes_and_every_image_column_counts():
    cases = ((WeakFactorConfig("image", 6, 5), (4, 30, 6, 5)), (WeakFactorConfig("image", 5, 8), (4, 30, 5, 8)),
             (WeakFactorConfig("sequence", 13), (4, 30, 13)))
    for cfg, shape in cases:
        z, c = WeakFactorNet(cfg)(torch.randn(shape))
        assert z.shape == (4, cfg.n_factors) and c.shape == (4,)
    net = WeakFactorNet(WeakFactorConfig("image", 6, 5))
    x = torch.randn(2, 30, 6, 5)
    x2 = x.clone()
    x2[:, :, :, :2] += 10.0  # the oldest columns: cropped from the skip path, they still reach c by the convolutions
    assert not torch.allclose(net(x)[1], net(x2)[1])


def _mean_abs_corr(z: np.ndarray) -> float:
    cc = np.corrcoef(z.T)
    return float(np.abs(cc[np.triu_indices_from(cc, 1)]).mean())


def test_a_larger_lambda_decorrelates_the_weak_factors(panel, base):
    data = _data(panel, base, "ms")
    first = panel.date_index(date(2017, 7, 3))
    dates = training_dates(data, "ms", first, FAST)
    pred = signal_dates(panel, date(2017, 7, 3), date(2017, 10, 1))
    corr = {}
    for lam in (0.0, 20.0):
        cfg = TrainConfig(**{**FAST.__dict__, "lam": lam, "epochs": 3, "patience": 3})
        res = fit("ms", data, dates, cfg, net_config("ms", data))
        z = torch.cat([res.model(x)[0] for x in _inputs(data, "ms", pred)]).detach().numpy()
        corr[lam] = _mean_abs_corr(z)
    assert corr[20.0] < corr[0.0]


def _inputs(data, name, dates):
    from factor_pipeline.models.trainer import _batch

    return [_batch(data, name, t, need_label=False)[1] for t in dates]


@pytest.mark.slow
def test_finds_the_planted_signal_out_of_sample(panel, base):
    data = _data(panel, base, "l2")
    pred = signal_dates(panel, date(2017, 7, 3), date(2018, 6, 1))
    out, fits, _ = rolling("l2", data, pred, FAST, net_config("l2", data))
    ic = _oos_ic(out, data, pred)
    assert len(fits) == 2 and len(ic) > 40
    assert np.nanmean(ic) > 0.02 and (ic > 0).mean() > 0.5


def test_training_uses_only_labels_realised_before_the_predictions(panel, base):
    data = _data(panel, base, "ms")
    first = panel.date_index(date(2018, 1, 5))
    dates = training_dates(data, "ms", first, FAST)
    assert max(dates) + HORIZON + 1 < first
    pred = signal_dates(panel, date(2018, 1, 1), date(2018, 3, 1))
    out1, _, _ = rolling("ms", data, pred, FAST, net_config("ms", data))
    # labels realised after the first prediction date are scrambled: nothing predicted may change
    out2, _, _ = rolling("ms", _late_scrambled(panel, base, "ms", first, 5), pred, FAST, net_config("ms", data))
    assert out1.equals(out2)


def test_same_seed_same_weights(panel, base):
    data = _data(panel, base, "ms")
    dates = training_dates(data, "ms", panel.date_index(date(2017, 7, 3)), FAST)[-30:]
    a = fit("ms", data, dates, FAST, net_config("ms", data)).model.state_dict()
    b = fit("ms", data, dates, FAST, net_config("ms", data)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_top_group_turnover_by_hand():
    from factor_pipeline.evaluation.ic import top_group_turnover

    codes = np.array([f"s{i}" for i in range(40)])
    same = np.arange(40.0)
    shifted = np.roll(same, 1)  # s0 takes the top score: one of the two top names changes
    assert top_group_turnover([(codes, same), (codes, same)]) == 0.0
    assert top_group_turnover([(codes, same), (codes, shifted)]) == pytest.approx(0.5)
    assert top_group_turnover([(codes, same), (codes, -same)]) == 1.0


def test_rank_ic_matches_a_hand_spearman():
    a = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    b = np.array([30.0, 20.0, 10.0, 50.0, 40.0])
    # ranks a: 2,0,1,4,3; b: 2,1,0,4,3; d = 0,-1,1,0,0 -> 1 - 6*2/(5*24) = 0.9
    assert rank_ic(a, b) == pytest.approx(0.9)
    assert rank_ic(np.array([1.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(np.sqrt(3) / 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("batch_size", [0, 16])
def test_training_on_cuda_with_bf16(panel, base, batch_size):
    data = _data(panel, base, "week")
    data = TrainData(base.to("cuda"), data.samples, data.y_std, data.y_raw, data.codes, data.dates)
    dates = training_dates(data, "week", panel.date_index(date(2017, 7, 3)), FAST)[-10:]
    cfg = TrainConfig(**{**FAST.__dict__, "batch_size": batch_size})
    res = fit("week", data, dates, cfg, net_config("week", data))
    assert next(res.model.parameters()).is_cuda and np.isfinite(res.best_valid_ic)


def test_data_hash_does_not_depend_on_where_the_panel_starts(panel, base, tiny_dir):
    """A one-week run builds a shorter panel than a multi-year one; the same fit must hash the same."""
    from datetime import date

    from factor_pipeline.models.tracking import data_hash

    con = duckdb.connect()
    late = build_panel(con, {k: duckdb_reader(v) for k, v in table_files(tiny_dir).items() if k != "oracle"},
                       start=date(2016, 3, 1))
    name = "day"
    days = [d for d in panel.dates if np.datetime64("2017-03-01") <= d <= np.datetime64("2017-09-01")][::5]
    full = _data(panel, base, name)
    short = _data(late, dataset_base(late), name)
    i_full = [panel.date_index(d) for d in days]
    i_short = [late.date_index(d) for d in days]
    lookback = DATASETS[name].lookback
    assert i_full != i_short
    assert data_hash(full, i_full, lookback) == data_hash(short, i_short, lookback)
    # a panel cut as a one-week run cuts it: from the dataset's lookback before the first training date
    tight = build_panel(con, {k: duckdb_reader(v) for k, v in table_files(tiny_dir).items() if k != "oracle"},
                        start=history_start(days[0].astype(object), lookback))
    i_tight = [tight.date_index(d) for d in days]
    assert min(i_tight) < 150  # a fixed 150-day window would reach before this panel's start
    assert data_hash(_data(tight, dataset_base(tight), name), i_tight, lookback) == data_hash(full, i_full, lookback)
    # while a changed label on one of those dates changes it
    y = labels_mod.forward_returns(late)
    y[:, i_short[0]] += np.random.default_rng(0).normal(scale=0.05, size=len(y))
    assert data_hash(_data(late, dataset_base(late), name, y), i_short, lookback) != \
        data_hash(short, i_short, lookback)


def test_a_dataset_the_market_lacks_is_unavailable_before_any_training(panel):
    """A daily-only market (no l2_daily, no intraday bars) must not crash the l2/ms/msnew weak factors."""

    from factor_pipeline.datasets.registry import DatasetUnavailable
    from factor_pipeline.models.weak import weak_factors

    daily_only = replace(panel, l2=None, ms=None, bars30=None)
    for name in ("l2", "ms", "msnew"):
        with pytest.raises(DatasetUnavailable, match=name):
            weak_factors(name, daily_only, [400], FAST, 4, torch.device("cpu"))


ENSEMBLE = TrainConfig(epochs=2, patience=1, date_stride=1, dates_per_epoch=12, valid_every=10, seeds=2,
                       train_years=1, seed=3)


def test_validation_is_purged_of_overlapping_training_labels(panel, base):
    data = _data(panel, base, "day")
    dates = training_dates(data, "day", panel.date_index(date(2017, 7, 3)), ENSEMBLE)
    assert set(np.diff(dates)) == {1}  # every trading date of the window, no stride
    res = fit("day", data, dates, ENSEMBLE, net_config("day", data))
    assert max(res.train_dates) + HORIZON + 1 < min(res.valid_dates)
    assert all(b - a == 10 for a, b in zip(res.valid_dates, res.valid_dates[1:], strict=False))


def test_every_trading_date_gets_its_periods_model_and_no_later_label(panel, base):
    """Weak factors on every trading date: one week predicted alone equals the same week inside the
    whole period's run (the fit is anchored on the period's first trading date, not on the first date
    a run asks for), and labels realised on or after that first trading date change nothing."""
    data = _data(panel, base, "day")
    every = trading_dates(panel, date(2018, 1, 1), date(2018, 3, 1))
    week = every[20:25]
    out_all, fits, _ = rolling("day", data, every, ENSEMBLE, net_config("day", data))
    assert len(fits) == 2 and out_all["date"].n_unique() == len(every)  # two seeds, one period
    out_week, _, _ = rolling("day", data, week, ENSEMBLE, net_config("day", data))
    assert out_week.equals(out_all.filter(pl.col("date").is_in(out_week["date"].unique().implode())))
    first = every[0]
    assert all(max(f.train_dates + f.valid_dates) + HORIZON + 1 < first for f in fits)
    out2, _, _ = rolling("day", _late_scrambled(panel, base, "day", first, 7), every, ENSEMBLE, net_config("day", data))
    assert out_all.equals(out2)


def test_instance_normalised_week_reads_its_rows_twice_and_no_later_label(panel, base):
    """A preset that lists `week` in `instance_norm` gives week's network 12 rows (the cross-sectional cells and
    each stock's own-history z-scores) and day's its 11 features; a week period predicted with it changes with
    the option (it is another input) but not with labels realised on or after the period's first date; an
    ensemble whose networks read different inputs is refused."""
    cfg = replace(ENSEMBLE, instance_norm=("week",), seeds=1)
    data = _data(panel, base, "week")
    net = net_config("week", data, cfg)
    assert net.instance_norm and net.in_rows == 12
    assert not net_config("day", _data(panel, base, "day"), cfg).instance_norm
    every = trading_dates(panel, date(2018, 1, 1), date(2018, 2, 1))
    out, fits, _ = rolling("week", data, every, cfg, net)
    assert fits[0].model.block.down.in_channels == 12
    plain, _, _ = rolling("week", data, every, cfg, net_config("week", data))
    assert not np.allclose(out["output"].to_numpy(), plain["output"].to_numpy())
    out2, _, _ = rolling("week", _late_scrambled(panel, base, "week", every[0], 7), every, cfg, net)
    assert out.equals(out2)
    mixed = [fits[0].model, WeakFactorNet(net_config("week", data))]
    with pytest.raises(ValueError, match="instance_norm"):
        predict(mixed, "week", data, every[:1])


def _config_rolling_gets(monkeypatch, panel, dates: list[int], cfg: TrainConfig) -> TrainConfig:
    """The config weak_factors hands rolling for `day` (rolling replaced by a spy that stops there)."""
    import factor_pipeline.models.weak as weak

    seen = []

    def spy(name, data, predict_dates, cfg, *args, **kwargs):
        seen.append(cfg)
        raise RuntimeError("stop")

    monkeypatch.setattr(weak, "rolling", spy)
    with pytest.raises(RuntimeError, match="stop"):
        weak.weak_factors("day", panel, dates, cfg, 4, torch.device("cpu"))
    return seen[0]


def test_a_dataset_with_a_window_of_its_own_trains_on_it_and_nothing_later(panel, base, monkeypatch):
    """`dataset_train_years` (("day", 1),): day's fits train on the year of dates before the period (the newest
    label realised before it), week's on the preset's `train_years`; weak_factors hands rolling the resolved config."""

    cfg = replace(ENSEMBLE, train_years=3, dataset_train_years=(("day", 1),))
    day, week = for_dataset(cfg, "day"), for_dataset(cfg, "week")
    assert (day.train_years, week.train_years) == (1, 3) and day.dataset_train_years == week.dataset_train_years == ()
    anchor = int(np.searchsorted(panel.dates, np.datetime64("2018-06-01")))  # 2.4 years after the panel's start
    dates = training_dates(_data(panel, base, "day"), "day", anchor, day)
    assert dates[-1] + HORIZON + 1 < anchor  # every label realised before the period
    assert dates[-1] - dates[0] <= 244 and len(dates) > 200
    assert len(training_dates(_data(panel, base, "week"), "week", anchor, week)) > len(dates) + 100
    handed = _config_rolling_gets(monkeypatch, panel, [anchor], cfg)
    assert handed.train_years == 1 and handed.dataset_train_years == ()


def _cached_day(cache, data: TrainData, net: WeakFactorConfig):
    """rolling's model_for / on_fit over a model cache, keyed as the weak-factor stage keys `day`'s members."""
    from factor_pipeline.models.tracking import data_hash

    def model_for(dates, these, mcfg):
        return cache.load("day", cache.key("day", mcfg, net, data_hash(data, dates, 30)), net)

    def on_fit(dates, these, res, mcfg):
        cache.save("day", cache.key("day", mcfg, net, data_hash(data, dates, 30)), res.model)

    return model_for, on_fit


def test_a_dataset_with_seeds_of_its_own_trains_the_members_it_lacks_and_reuses_the_rest(panel, base, tmp_path,
                                                                                          monkeypatch):
    """`dataset_seeds` (("day", 3),): day's ensemble has three members, week keeps the preset's two; each member
    is keyed by its own seed, so after a two-seed run only the third is trained, and the output is the three
    members' mean z-score. weak_factors hands rolling the resolved config."""
    from factor_pipeline.models.tracking import ModelCache
    from factor_pipeline.models.trainer import predict

    cfg = replace(ENSEMBLE, dataset_seeds=(("day", 3),))
    day, week = for_dataset(cfg, "day"), for_dataset(cfg, "week")
    assert (day.seeds, week.seeds) == (3, 2) and day.dataset_seeds == week.dataset_seeds == ()
    data = _data(panel, base, "day")
    net = net_config("day", data)
    every = trading_dates(panel, date(2018, 1, 1), date(2018, 1, 20))
    cache = ModelCache(tmp_path)

    model_for, on_fit = _cached_day(cache, data, net)
    _, two, _ = rolling("day", data, every, ENSEMBLE, net, model_for, on_fit)
    out, new, _ = rolling("day", data, every, day, net, model_for, on_fit)
    assert len(two) == 2 and len(new) == 1  # seeds 3 and 4 reused, seed 5 trained
    dates = training_dates(data, "day", panel.date_index(date(2018, 1, 2)), ENSEMBLE)
    third = fit("day", data, dates, replace(ENSEMBLE, seed=5, seeds=1), net).model
    want = predict([f.model for f in two] + [third], "day", data, every)
    np.testing.assert_allclose(out["output"].to_numpy(), want["output"].to_numpy(), atol=1e-5)
    handed = _config_rolling_gets(monkeypatch, panel, every[:1], cfg)
    assert handed.seeds == 3 and handed.dataset_seeds == ()


def test_a_seed_ensemble_averages_its_members_standardised_outputs(panel, base):

    from factor_pipeline.models.trainer import predict

    data = _data(panel, base, "day")
    dates = training_dates(data, "day", panel.date_index(date(2018, 1, 2)), ENSEMBLE)
    t = [panel.date_index(date(2018, 1, 5))]
    members = [fit("day", data, dates, replace(ENSEMBLE, seed=s, seeds=1), net_config("day", data)).model
               for s in (3, 4)]
    one = [predict(m, "day", data, t) for m in members]
    both = predict(members, "day", data, t)
    z = [(o["output"].to_numpy() - o["output"].mean()) / o["output"].std(ddof=0) for o in one]
    np.testing.assert_allclose(both["output"].to_numpy(), (z[0] + z[1]) / 2, atol=1e-5)
    assert both["z_1"].equals(one[0]["z_1"])  # factors are the first member's
    assert not np.allclose(z[0], z[1])


def test_a_lagged_ensemble_adds_the_previous_periods_networks_and_no_later_label(panel, base, tmp_path):
    """`lagged=1`: a period's weak factors average its own networks' and the previous refit's z-scored outputs
    (z_1..z_K stay its own first network's); the previous refit is the very fit a run of that period makes
    (same cache keys, so a cached one is reused, not retrained), and no label realised on or after the
    period's first trading date reaches either. Half-yearly refits: the tiny market's yearly 2017 fit has less
    than a year of training dates (it starts in 2016), the next test."""

    from factor_pipeline.models.tracking import ModelCache
    from factor_pipeline.models.trainer import predict

    data = _data(panel, base, "day")
    net = net_config("day", data)
    every = trading_dates(panel, date(2018, 1, 1), date(2018, 2, 1))
    half = replace(ENSEMBLE, retrain_months=6)
    lag = replace(half, lagged=1)
    own, own_fits, _ = rolling("day", data, every, half, net)
    cache = ModelCache(tmp_path)

    model_for, on_fit = _cached_day(cache, data, net)
    out, fits, _ = rolling("day", data, every, lag, net, model_for, on_fit)
    assert len(fits) == 4  # 2018-01's two seeds, and 2017-07's two, which this run does not predict
    prev = [f for f in fits if max(f.valid_dates) < panel.date_index(date(2017, 7, 3))]
    assert len(prev) == 2
    assert out.select("code", "date", "z_1", "z_8").equals(own.select("code", "date", "z_1", "z_8"))
    first = [f for f in fits if f not in prev]
    for a, b in zip(first, own_fits, strict=True):  # the period's own networks are the unlagged run's
        sa, sb = a.model.state_dict(), b.model.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sb)
    want = predict([f.model for f in first] + [f.model for f in prev], "day", data, every)
    np.testing.assert_allclose(out["output"].to_numpy(), want["output"].to_numpy(), atol=1e-6)
    assert not np.allclose(out["output"].to_numpy(), own["output"].to_numpy(), atol=1e-3)
    # 2017-07 predicted alone finds the networks the lagged 2018-01 run cached: none is fitted again
    _, again, _ = rolling("day", data, trading_dates(panel, date(2017, 8, 1), date(2017, 8, 8)), half, net,
                       model_for, on_fit)
    assert again == []
    out2, _, _ = rolling("day", _late_scrambled(panel, base, "day", every[0], 7), every, lag, net)
    assert out.equals(out2)


def test_a_predecessor_with_under_a_year_of_training_dates_stays_out_of_the_lagged_ensemble(panel, base):
    """The tiny market starts in January 2016, so the yearly 2017 fit learns from about 200 dates: 2018's lagged
    ensemble is 2018's own networks alone, and the short 2017 fit is not even trained."""

    from factor_pipeline.models.trainer import LAGGED_MIN_DATES

    data = _data(panel, base, "day")
    net = net_config("day", data)
    assert len(training_dates(data, "day", panel.date_index(date(2017, 1, 3)), ENSEMBLE)) < LAGGED_MIN_DATES
    every = trading_dates(panel, date(2018, 1, 1), date(2018, 1, 20))
    own, own_fits, _ = rolling("day", data, every, ENSEMBLE, net)
    out, fits, _ = rolling("day", data, every, replace(ENSEMBLE, lagged=1), net)
    assert len(fits) == len(own_fits) == 2
    assert out.equals(own)


def test_time_folds_partition_the_window_and_purge_every_label_that_shares_a_day_with_a_held_out_one():
    from factor_pipeline.models.trainer import fold_dates, member_configs

    dates = list(range(40, 140, 1))
    helds = []
    for k in range(4):
        train, held = fold_dates(dates, 4, k)
        helds += held
        assert held == list(range(40 + 25 * k, 65 + 25 * k))  # contiguous, a quarter each
        assert all(abs(t - s) > HORIZON + 1 for t in train for s in held)
        # nothing else is dropped: the purge is the label horizon on each side that has a neighbour
        assert len(train) == len(dates) - 25 - (HORIZON + 1) * ((k > 0) + (k < 3))
    assert helds == dates
    assert [c.fold for c in member_configs(replace(ENSEMBLE, seeds=4, folds=2))] == [0, 1, 0, 1]
    assert [c.fold for c in member_configs(ENSEMBLE)] == [-1, -1]
    with pytest.raises(ValueError, match="at least as many seeds"):
        member_configs(replace(ENSEMBLE, seeds=2, folds=3))


def test_out_of_fold_weak_factors_never_come_from_a_network_fitted_on_their_label(panel, base):
    """`folds` 2: each of the period's two networks leaves out half of its window and predicts it. Every window
    date gets one out-of-fold row per stock, from the network that left it out (recomputed by hand); noise in
    every label sharing a day with fold 0's labels leaves fold 0's rows as they were, to the bit, and moves fold
    1's (whose network trained on them) and the period's predictions (both networks)."""
    from factor_pipeline.models.trainer import fold_dates

    data = _data(panel, base, "day")
    net = net_config("day", data)
    cfg = replace(ENSEMBLE, folds=2)
    every = trading_dates(panel, date(2018, 1, 1), date(2018, 2, 1))
    out, fits, oof = rolling("day", data, every, cfg, net)
    window = training_dates(data, "day", every[0], cfg)
    assert set(oof["period"]) == {"2018"} and oof.select("code", "date").is_unique().all()
    assert sorted(oof["date"].unique()) == [d.astype(object) for d in panel.dates[window]]
    for k, res in enumerate(fits):
        held = fold_dates(window, 2, k)[1]
        assert all(abs(t - s) > HORIZON + 1 for t in res.train_dates + res.valid_dates for s in held)
        mine = oof.filter(pl.col("date").is_in([panel.dates[t].astype(object) for t in held]))
        want = predict(res.model, "day", data, held)
        np.testing.assert_allclose(mine["output"].to_numpy(), want["output"].to_numpy(), atol=1e-6)
    held0 = fold_dates(window, 2, 0)[1]
    touched = np.arange(held0[0] - HORIZON - 1, held0[-1] + HORIZON + 2)
    out2, _, oof2 = rolling("day", _scrambled_at(panel, base, "day", touched, 11), every, cfg, net)
    in_fold0 = pl.col("date") <= panel.dates[held0[-1]].astype(object)
    assert oof2.filter(in_fold0).equals(oof.filter(in_fold0))
    assert not np.allclose(oof2.filter(~in_fold0)["output"].to_numpy(), oof.filter(~in_fold0)["output"].to_numpy(),
                           atol=1e-3)
    assert not np.allclose(out2["output"].to_numpy(), out["output"].to_numpy(), atol=1e-3)


def test_within_date_chunks_split_one_dates_stocks_once_and_size_zero_is_the_whole_date():
    from factor_pipeline.models.trainer import _chunks

    rng = np.random.default_rng(0)
    parts = _chunks(1000, 256, rng)
    assert len(parts) == 4 and {len(p) for p in parts} == {250}
    assert np.array_equal(np.sort(torch.cat(parts).numpy()), np.arange(1000))  # every stock once, no other
    assert [p.tolist() for p in _chunks(1000, 0, rng)] == [list(range(1000))]
    assert len(_chunks(300, 256, rng)) == 1  # fewer than two chunks' worth: one step on the whole date


def test_mini_batches_take_more_steps_from_the_same_dates(panel, base):
    data = _data(panel, base, "day")
    dates = training_dates(data, "day", panel.date_index(date(2017, 7, 3)), FAST)[-12:]
    cfg = TrainConfig(epochs=1, patience=1, seed=0)
    steps = {}
    orig = torch.optim.Adam.step
    for size in (0, 16):
        calls = []

        def counted(self, *a, _calls=calls, **k):
            _calls.append(1)
            return orig(self, *a, **k)

        torch.optim.Adam.step = counted
        try:
            fit("day", data, dates, TrainConfig(**{**cfg.__dict__, "batch_size": size}), net_config("day", data))
        finally:
            torch.optim.Adam.step = orig
        steps[size] = len(calls)
    n = [int((data.samples[:, t] & np.isfinite(data.y_std[:, t])).sum()) for t in fit(
        "day", data, dates, cfg, net_config("day", data)).train_dates]
    assert steps[0] == len(n)
    assert steps[16] == sum(round(k / 16) if k >= 32 else 1 for k in n)


def test_a_step_over_several_dates_is_one_adam_step_on_their_mean_loss(panel, base):
    """dates_per_step = k: one epoch of k drawn dates is one optimiser step on the mean of the k per-date losses
    (each date's loss cross-sectional on its own), checked against that step taken by hand; 1 is the default."""

    from factor_pipeline.models.trainer import _batch

    data = _data(panel, base, "day")
    dates = training_dates(data, "day", panel.date_index(date(2017, 7, 3)), FAST)[-20:]
    cfg = TrainConfig(epochs=1, patience=1, seed=4, dates_per_epoch=5, dates_per_step=5)
    net = net_config("day", data)
    res = fit("day", data, dates, cfg, net)
    torch.manual_seed(cfg.seed)
    model = WeakFactorNet(net)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    drawn = np.random.default_rng(cfg.seed).permutation(res.train_dates)[:5]
    losses = []
    for t in drawn:
        stocks, x = _batch(data, "day", int(t), need_label=True)
        z, c = model(x)
        losses.append(factor_loss(c, z, torch.from_numpy(data.y_std[stocks, int(t)]).float(), cfg.lam)[0])
    opt.zero_grad()
    torch.stack(losses).mean().backward()
    opt.step()
    got, want = res.model.state_dict(), model.state_dict()
    assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)
    one = fit("day", data, dates, replace(cfg, dates_per_step=1), net).model.state_dict()  # five steps instead
    assert not all(torch.allclose(one[k], want[k], atol=1e-6) for k in want)


def test_a_validation_gap_moves_the_validation_dates_away_from_training(panel, base):
    data = _data(panel, base, "day")
    dates = training_dates(data, "day", panel.date_index(date(2017, 7, 3)), FAST)
    cfg = TrainConfig(**{**FAST.__dict__, "epochs": 1, "date_stride": 1})
    plain = fit("day", data, dates, cfg, net_config("day", data))
    gapped = fit("day", data, dates, TrainConfig(**{**cfg.__dict__, "valid_gap": 20}), net_config("day", data))
    assert gapped.train_dates == plain.train_dates  # training keeps every date it had
    assert min(gapped.valid_dates) > max(gapped.train_dates) + HORIZON + 1 + 20
    assert set(gapped.valid_dates) == {t for t in plain.valid_dates if t > max(plain.train_dates) + HORIZON + 21}


def test_normal_scores_are_standardised_blom_scores_of_the_ranks():
    from scipy.stats import norm

    from factor_pipeline.models.trainer import normal_scores

    y = np.array([0.30, -0.02, 0.01, 0.01, 5.0])  # a tie and an outlier
    ranks = np.array([4.0, 1.0, 2.5, 2.5, 5.0])
    s = norm.ppf((ranks - 0.375) / 5.25)
    np.testing.assert_allclose(normal_scores(y), (s - s.mean()) / s.std(), atol=1e-12)
    # only the order counts: the outlier weighs as much as any top-ranked label would
    np.testing.assert_allclose(normal_scores(np.array([0.30, -0.02, 0.01, 0.01, 0.31])), normal_scores(y))


def test_rank_label_training_depends_on_the_labels_order_only(panel, base):
    """With label="rank" a monotone transform of every date's returns trains the same network; with the
    z-scored label it does not (the outliers' size moves the steps)."""
    y = labels_mod.forward_returns(panel)
    warped = np.sign(y) * np.abs(y) ** 3 * 50 + 1.0  # strictly increasing in y
    cfg = TrainConfig(**{**FAST.__dict__, "label": "rank"})
    a_data, b_data = _data(panel, base, "ms", y), _data(panel, base, "ms", warped)
    dates = training_dates(a_data, "ms", panel.date_index(date(2017, 7, 3)), cfg)[-30:]
    a = fit("ms", a_data, dates, cfg, net_config("ms", a_data)).model.state_dict()
    b = fit("ms", b_data, dates, cfg, net_config("ms", b_data)).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    za = fit("ms", a_data, dates, FAST, net_config("ms", a_data)).model.state_dict()
    zb = fit("ms", b_data, dates, FAST, net_config("ms", b_data)).model.state_dict()
    assert not all(torch.equal(za[k], zb[k]) for k in za)
    with pytest.raises(ValueError, match="training label"):
        fit("ms", a_data, dates, TrainConfig(**{**FAST.__dict__, "label": "ranks"}), net_config("ms", a_data))


def test_cache_key_of_a_default_label_is_the_key_before_the_option(tmp_path):
    """Fits cached before `label` (and `lagged`, `dates_per_step`, `instance_norm`, `dataset_train_years`,
    `dataset_seeds`, `folds`) existed keep their key at its default; another value is another model."""
    import hashlib
    import json
    from dataclasses import asdict

    from factor_pipeline.models.tracking import ModelCache

    cache, net = ModelCache(tmp_path), WeakFactorConfig(kind="sequence", rows=6)
    later = ("retrain_months", "label", "lagged", "dates_per_step", "instance_norm", "dataset_train_years",
             "dataset_seeds", "folds", "fold")
    before = {k: v for k, v in asdict(FAST).items() if k not in later}
    net_before = {k: v for k, v in asdict(net).items() if k != "instance_norm"}
    blob = json.dumps({"dataset": "day", "train": before, "net": net_before, "data": "h"}, sort_keys=True)
    assert cache.key("day", FAST, net, "h") == hashlib.sha256(blob.encode()).hexdigest()[:20]
    # the preset's list of instance-normalised datasets is no key of its own: what a network reads is its net's
    listed = TrainConfig(**{**FAST.__dict__, "instance_norm": ("week",)})
    assert cache.key("day", listed, net, "h") == cache.key("day", FAST, net, "h")
    assert cache.key("day", FAST, replace(net, instance_norm=True), "h") != cache.key("day", FAST, net, "h")
    ranked = TrainConfig(**{**FAST.__dict__, "label": "rank"})
    assert cache.key("day", ranked, net, "h") != cache.key("day", FAST, net, "h")
    stepped = TrainConfig(**{**FAST.__dict__, "dates_per_step": 4})
    assert cache.key("day", stepped, net, "h") != cache.key("day", FAST, net, "h")
    # a dataset's own window: its fit is keyed by the window it trained on, as if the preset had said so
    mapped = for_dataset(TrainConfig(**{**FAST.__dict__, "dataset_train_years": (("day", 1),)}), "day")
    assert cache.key("day", mapped, net, "h") == cache.key("day", replace(FAST, train_years=1), net, "h")
    more = for_dataset(TrainConfig(**{**FAST.__dict__, "dataset_seeds": (("day", 8),)}), "day")
    assert cache.key("day", more, net, "h") == cache.key("day", replace(FAST, seeds=8), net, "h")
    assert cache.key("day", TrainConfig(**{**FAST.__dict__, "lr": 2e-3}), net, "h") != cache.key("day", FAST, net, "h")
    # a member that left out a fold is another network than the one trained on the whole window
    held = replace(FAST, folds=2, fold=0)
    assert len({cache.key("day", c, net, "h") for c in (FAST, held, replace(held, fold=1))}) == 3


def test_a_new_mlflow_store_appears_whole_and_once(tmp_path, monkeypatch):
    """The SQLite store is migrated beside its path and linked in: the file, once there, has every table
    (its alembic version stamped), no temporary file is left, and a second call leaves it as it is."""
    import sqlite3

    import mlflow

    from factor_pipeline.models.tracking import ensure_store

    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(tmp_path))
    path = tmp_path / "m" / "mlflow.db"
    ensure_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "experiments", "registered_models", "alembic_version"} <= tables
        assert con.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    assert [p.name for p in path.parent.iterdir()] == ["mlflow.db"]
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    exp = mlflow.create_experiment("x", artifact_location=(tmp_path / "a").as_uri())
    stamp = path.stat().st_mtime_ns
    ensure_store(f"sqlite:///{path}")
    assert path.stat().st_mtime_ns == stamp and mlflow.get_experiment(exp).name == "x"
