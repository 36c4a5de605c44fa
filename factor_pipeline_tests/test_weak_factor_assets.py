"""The weak-factor asset: table of z_1..z_K and output, MLflow registration, cached refits."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from factor_pipeline.market.schema import TABLES
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import Warehouse
from factor_pipeline.orchestration.assets.weak_factors import WEAK_FACTOR_ASSETS
from factor_pipeline.orchestration.resources import MlflowResource, TorchDeviceResource, WarehouseResource


@pytest.fixture
def home(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(tmp_path / "home"))
    wh = Warehouse()
    src = file_source(tiny_dir)
    for t in TABLES:
        wh.load(src, t)
    return tmp_path / "home"


def _run(name: str, first: str = "2018-01-01", last: str = "2018-02-19"):
    asset = [a for a in WEAK_FACTOR_ASSETS if a.key.path[0] == f"weak_factors_{name}"]
    return dg.materialize(
        asset, instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(), "mlflow": MlflowResource(), "torch_device": TorchDeviceResource()},
        run_config={"ops": {f"weak_factors_{name}": {"config": {"training_preset": "tiny"}}},
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


@pytest.mark.slow
def test_weak_factor_asset_writes_tracks_and_reuses(home):
    import mlflow

    res = _run("l2")
    md = res.get_asset_materialization_events()[0].materialization.metadata
    assert md["fits_trained"].value == 1 and md["signal_dates"].value == 8
    wh = Warehouse()
    with wh.connect(read_only=True) as con:
        cols = [r[0] for r in con.execute("DESCRIBE weak_factors").fetchall()]
        n_dates = con.execute("SELECT count(DISTINCT date) FROM weak_factors WHERE dataset = 'l2'").fetchone()[0]
    assert cols == ["code", "date", "dataset", *[f"z_{k}" for k in range(1, 9)], "output"]
    assert n_dates == 8
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    versions = mlflow.MlflowClient().search_model_versions("name = 'factor_pipeline.weak.l2'")
    assert len(versions) == 1
    run = mlflow.get_run(versions[0].run_id)
    assert "valid_rank_ic" in run.data.metrics and run.data.params["data_hash"]
    before = wh.checksum("weak_factors")
    md2 = _run("l2").get_asset_materialization_events()[0].materialization.metadata
    assert md2["fits_trained"].value == 0 and md2["fits_reused"].value == 1
    assert wh.checksum("weak_factors") == before
    assert len(mlflow.MlflowClient().search_model_versions("name = 'factor_pipeline.weak.l2'")) == 1


@pytest.mark.slow
def test_one_week_reads_intraday_bars_only_for_its_windows_and_predicts_the_same(home):
    """The Friday job: a week whose fit is cached loads the 5-minute bars only for its own windows (the long
    daily history still keys the cache) and writes the very weak factors a multi-week run wrote."""
    from polars.testing import assert_frame_equal

    md = _run("msnew").get_asset_materialization_events()[0].materialization.metadata
    assert md["fits_trained"].value == 1
    wh = Warehouse()
    where = "dataset = 'msnew' AND date >= DATE '2018-02-12'"
    with wh.connect(read_only=True) as con:
        before = con.sql(f"SELECT * FROM weak_factors_daily WHERE {where} ORDER BY date, code").pl()
    one = _run("msnew", "2018-02-12", "2018-02-12").get_asset_materialization_events()[0].materialization.metadata
    assert one["fits_trained"].value == 0 and one["fits_reused"].value == 1
    assert one["intraday_from"].value > "2017-09-01"  # ~100 days before the week, not years
    with wh.connect(read_only=True) as con:
        after = con.sql(f"SELECT * FROM weak_factors_daily WHERE {where} ORDER BY date, code").pl()
    assert before.height > 0
    assert_frame_equal(after, before)


def _materialize(assets: list, first: str, last: str, resources: dict):
    return dg.materialize(
        assets, instance=dg.DagsterInstance.ephemeral(), resources=resources,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})


@pytest.mark.slow
def test_with_folds_the_combiners_first_year_learns_from_out_of_fold_rows(home, monkeypatch):
    """A preset with `folds` (here tiny with two seeds, two folds): `week` and `day` write their period's
    out-of-fold weak factors (table `weak_factors_oof`: every window date before the period, one row per stock,
    date and dataset), and `model_wd` scores the run's first weeks, which have no earlier predicted rows, from a
    fit on those rows (MLflow `rows` = out_of_fold), every label realised before the period (point-in-time check).
    Without folds the same weeks have nothing to learn from."""
    import mlflow

    from factor_pipeline.config import TRAINING
    from factor_pipeline.orchestration.assets.datasets import labels
    from factor_pipeline.orchestration.assets.scores import scores

    monkeypatch.setitem(TRAINING, "tiny", {**TRAINING["tiny"], "seeds": 2, "folds": 2})
    first, last = "2018-01-01", "2018-02-19"
    assert _materialize([labels], first, last, {"warehouse": WarehouseResource()}).success
    for name in ("week", "day"):
        md = _run(name, first, last).get_asset_materialization_events()[0].materialization.metadata
        assert md["fits_trained"].value == 2 and md["out_of_fold_rows"].value > 0
    with Warehouse().connect(read_only=True) as con:
        oof = con.sql("SELECT * FROM weak_factors_oof").pl()
    assert set(oof["period"]) == {"2018"} and set(oof["dataset"]) == {"week", "day"}
    assert oof["date"].max() < date(2018, 1, 1) and oof.select("code", "date", "dataset").is_unique().all()
    res = _materialize([scores], first, last, {"warehouse": WarehouseResource(), "mlflow": MlflowResource()})
    md = res.get_asset_materialization_events()[0].materialization.metadata
    assert md["model_wd_fits"].value == 1 and md["out_of_fold_rows"].value == oof.height
    assert all(c.passed for c in res.get_asset_check_evaluations())
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["factor_pipeline.score"], output_format="list")
    assert {r.data.params["rows"] for r in runs if r.data.params["model"] == "model_wd"} == {"out_of_fold"}
    # the same weeks trained without folds clear their periods' rows: nothing earlier to learn from, no fit
    monkeypatch.setitem(TRAINING, "tiny", {**TRAINING["tiny"], "seeds": 1, "folds": 0})
    for name in ("week", "day"):
        assert _run(name, first, last).get_asset_materialization_events()[0].materialization.metadata[
            "out_of_fold_rows"].value == 0
    res = _materialize([scores], first, last, {"warehouse": WarehouseResource(), "mlflow": MlflowResource()})
    md = res.get_asset_materialization_events()[0].materialization.metadata
    assert md["out_of_fold_rows"].value == 0 and md["model_wd_fits"].value == 0
