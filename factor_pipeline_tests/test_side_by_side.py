"""Weak-factor fits side by side in processes: the same numbers as one process, and kept batches change nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import duckdb
import pytest
import torch

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.market.io import duckdb_reader, table_files
from factor_pipeline.models import side_by_side, trainer
from factor_pipeline.models.trainer import TrainConfig, TrainData, fit, net_config, rolling, training_dates

FAST = TrainConfig(epochs=2, patience=1, date_stride=4, train_years=2, seed=3)


@pytest.fixture(scope="module")
def panel(tiny_dir):
    con = duckdb.connect()
    return build_panel(con, {k: duckdb_reader(v) for k, v in table_files(tiny_dir).items() if k != "oracle"})


def _data(panel, name: str) -> TrainData:
    y = labels_mod.forward_returns(panel)
    m = sample_mask(panel, DATASETS[name].lookback)
    return TrainData(dataset_base(panel), m, labels_mod.standardised(y, m), y, panel.codes, panel.dates)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_periods_side_by_side_give_what_one_single_threaded_process_gives(panel):
    """Two periods (2017, 2018) of the image dataset `week` (whose convolutions round differently with
    the thread count): in two processes, and in this one with one thread, the fits and every prediction
    are equal to the bit, in period order; a member given by the cache is not trained again."""
    data = _data(panel, "week")
    net = net_config("week", data)
    pred = signal_dates(panel, date(2017, 7, 3), date(2018, 6, 1))
    threads = torch.get_num_threads()
    here, fits_here, _ = rolling("week", data, pred, FAST, net, workers=1)
    assert torch.get_num_threads() == threads  # restored
    apart, fits_apart, _ = rolling("week", data, pred, FAST, net, workers=2)
    assert len(fits_here) == len(fits_apart) == 2 and here.height > 0
    assert here.equals(apart)
    assert all(_same_weights(a.model, b.model) and a.history == b.history and a.train_dates == b.train_dates
               for a, b in zip(fits_here, fits_apart, strict=True))
    told = []
    first = fits_here[0]
    reuse = lambda dates, these, mcfg: first.model if these[0] == pred[0] else None  # noqa: E731  (2017's)
    again, fits_again, _ = rolling("week", data, pred, FAST, net, model_for=reuse,
                                on_fit=lambda d, t, res, c: told.append(res), workers=2)
    assert len(fits_again) == 1 and told == fits_again and again.equals(here)


def test_a_lagged_ensemble_trains_member_by_member_side_by_side_with_the_same_numbers(panel, monkeypatch):
    """A lagged ensemble (the real preset's shape) trains its periods one member at a time side by side (3
    half-year periods x 2 seeds = 6 pieces for 2 cores, not 3), then predicts in date chunks side by side: the
    fits, in period and seed order, and the predictions equal those of one single-threaded process to the bit."""
    monkeypatch.setattr(trainer, "LAGGED_MIN_DATES", 1)  # the tiny market's first window is short
    data = _data(panel, "day")
    net = net_config("day", data)
    cfg = replace(FAST, seeds=2, lagged=1, retrain_months=6)
    pred = signal_dates(panel, date(2017, 7, 3), date(2018, 6, 1))
    here, fits_here, _ = rolling("day", data, pred, cfg, net, workers=1)
    pieces = []
    real_in_order = side_by_side.in_order

    def counting(fn, tasks, *args, **kw):
        tasks = list(tasks)
        pieces.append(len(tasks))
        return real_in_order(fn, tasks, *args, **kw)

    monkeypatch.setattr(side_by_side, "in_order", counting)
    apart, fits_apart, _ = rolling("day", data, pred, cfg, net, workers=2)
    # six training pieces, then the predictions in date chunks (more than one, to be put back together)
    assert len(pieces) == 2 and pieces[0] == 6 and pieces[1] > 2
    assert len(fits_here) == len(fits_apart) == 6 and here.height > 0
    assert here.equals(apart)
    assert all(_same_weights(a.model, b.model) and a.history == b.history and a.train_dates == b.train_dates
               for a, b in zip(fits_here, fits_apart, strict=True))
    first = fits_here[0]  # the oldest period's first seed from the cache: five pieces, the same numbers

    def reuse(dates, these, mcfg):
        return first.model if dates[-1] == first.valid_dates[-1] and mcfg.seed == cfg.seed else None

    again, fits_again, _ = rolling("day", data, pred, cfg, net, model_for=reuse, workers=2)
    assert pieces[2] == 5 and len(fits_again) == 5 and again.equals(here)


def test_kept_batches_change_no_weight(panel, monkeypatch):
    """A fit that keeps its preprocessed batches across epochs trains the same network as one that gathers
    every date again."""
    data = _data(panel, "msnew")
    dates = training_dates(data, "msnew", panel.date_index(date(2017, 7, 3)), FAST)
    kept = fit("msnew", data, dates, FAST, net_config("msnew", data))
    monkeypatch.setattr(trainer, "BATCH_CACHE_BYTES", 0)
    again = fit("msnew", data, dates, FAST, net_config("msnew", data))
    assert _same_weights(kept.model, again.model) and kept.history == again.history


def test_the_plan_keeps_large_panels_and_gpus_in_the_process(panel, monkeypatch):
    data = _data(panel, "day")
    assert side_by_side.plan(data, "day", 1) == 1  # one period (the Friday job): here, with one thread
    assert side_by_side.plan(data, "day", 7) == min(side_by_side.cores(), 7)
    monkeypatch.setattr(side_by_side, "SMALL_BASE_BYTES", side_by_side.base_bytes(data.base, "day") - 1)
    assert side_by_side.plan(data, "day", 7) == 0
    assert side_by_side.plan(data, "week", 7) > 0  # week reads prices only: a smaller copy


def _in_a_daemon(panel_dir, out):
    """In a daemonic process (as a Celery prefork task runs): the periods run here, one after another."""
    import multiprocessing

    import polars as pl

    from factor_pipeline.parallel import can_spawn

    assert multiprocessing.current_process().daemon and not can_spawn()
    con = duckdb.connect()
    p = build_panel(con, {k: duckdb_reader(v) for k, v in table_files(panel_dir).items() if k != "oracle"})
    data = _data(p, "day")
    table, _, _ = rolling("day", data, signal_dates(p, date(2017, 7, 3), date(2018, 3, 1)), FAST,
                       net_config("day", data), workers=2)
    table.write_parquet(out)
    assert isinstance(table, pl.DataFrame)


def test_a_daemonic_process_runs_the_periods_itself_with_the_same_numbers(panel, tiny_dir, tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_in_a_daemon, args=(tiny_dir, tmp_path / "t.parquet"), daemon=True)
    proc.start()
    proc.join(600)
    assert proc.exitcode == 0
    import polars as pl

    data = _data(panel, "day")
    here, _, _ = rolling("day", data, signal_dates(panel, date(2017, 7, 3), date(2018, 3, 1)), FAST,
                      net_config("day", data), workers=2)
    assert pl.read_parquet(tmp_path / "t.parquet").equals(here)
