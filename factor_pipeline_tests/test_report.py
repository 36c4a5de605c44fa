"""Evaluation figures on constructed scores, metrics.json against its schema, report.html, baselines,
and MLflow registration of the combiner's fits."""

from __future__ import annotations

import json
from datetime import date, timedelta

import jsonschema
import numpy as np
import polars as pl
import pytest

from factor_pipeline.evaluation.evaluate import evaluate
from factor_pipeline.evaluation.groups import annualised, by_year, max_drawdown, quantile_groups
from factor_pipeline.models.baselines import equal_weight
from factor_pipeline.report.build import write_evaluation, write_html
from factor_pipeline.report.metrics import SCHEMA, validate_metrics

NAMES = ("week", "msnew", "day", "ms", "l2", "model1", "model2", "model3", "model4", "equal_weight",
         "alpha158_lgbm", "oracle")


def _inputs(n: int = 120, weeks: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores, labels, info = [], [], []
    codes = [f"{i:06d}.SH" for i in range(n)]
    size = rng.normal(size=n)
    for w in range(weeks):
        d = date(2018, 1, 5) + timedelta(weeks=w)
        y = rng.normal(scale=0.05, size=n)
        yw = 0.5 * y + rng.normal(scale=0.02, size=n)
        labels.append(pl.DataFrame({"code": codes, "date": d, "y_raw": y, "y_week": yw}))
        info.append(pl.DataFrame({"code": codes, "date": d, "csi_all": True, "csi300": np.arange(n) < 30,
                                  "csi500": (np.arange(n) >= 30) & (np.arange(n) < 80), "csi1000": np.arange(n) >= 80,
                                  "size": size, "vol20": rng.normal(size=n)}))
        for k, name in enumerate(NAMES):
            noise = 0.02 + 0.01 * k  # later names are noisier
            s = y + rng.normal(scale=noise, size=n) if name != "oracle" else y
            if w < 10 and name.startswith("model"):
                continue  # models start later than the datasets, as in the pipeline
            scores.append(pl.DataFrame({"code": codes, "date": d, "name": name, "score": s}))
    return pl.concat(scores), pl.concat(labels), pl.concat(info)


def test_closed_form_figures():
    assert max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.55 / 1.1 - 1)
    assert annualised(np.full(104, 0.01), 52.0) == pytest.approx(1.01 ** 52 - 1)
    assert by_year([date(2020, 1, 3), date(2020, 6, 5), date(2021, 1, 8)], np.array([0.1, 0.1, -0.2])) == \
        pytest.approx({"2020": 0.21, "2021": -0.2})
    g = quantile_groups(np.arange(100.0), 20)
    assert (np.bincount(g)[1:] == 5).all() and g[-1] == 20 and g[0] == 1


def test_evaluation_on_constructed_scores():
    scores, labels, info = _inputs()
    ev = evaluate(scores, labels, info, ("size", "vol20"))
    m = ev.metrics
    assert m["oracle"]["csi_all"]["rank_ic_mean"] == pytest.approx(1.0)
    ics = [m[n]["csi_all"]["rank_ic_mean"] for n in NAMES[:-1]]
    assert ics[0] > ics[4] > ics[-1] > 0  # noisier scores rank worse
    allg = m["week"]["csi_all"]
    assert len(allg["group_excess_ann"]) == 20 and len(m["week"]["csi300"]["group_excess_ann"]) == 5
    assert allg["group_excess_ann"][0] > 0 > allg["group_excess_ann"][-1]
    # the universe-mean excess of equal-size groups averages to zero on every date
    g = ev.groups.filter((pl.col("name") == "week") & (pl.col("universe") == "csi_all"))
    assert g.group_by("date").agg(pl.col("excess").mean())["excess"].abs().max() < 1e-12
    assert 0 < allg["top_turnover_weekly"] <= 1 and allg["top_max_drawdown"] <= 0
    assert set(allg["top_by_year"]) == {"2018", "2019"}
    assert abs(ev.exposures["week"]["size"]) < 0.1  # scores built without size carry no size bias
    assert ev.correlations["week"]["msnew"] > 0.5 and ev.correlations["day"]["day"] == 1.0


def test_metrics_json_validates_and_a_broken_one_does_not(tmp_path):
    scores, labels, info = _inputs(weeks=30)
    ev = evaluate(scores, labels, info, ("size",))
    run = {"data": {"kind": "synthetic", "preset": "tiny", "seed": 0, "version": 3}, "preset": "tiny",
           "seed": 0, "start": "2018-01-01", "end": "2018-12-31", "git": None}
    weak = scores.filter(pl.col("name") == "week").rename({"name": "dataset", "score": "output"})
    doc = write_evaluation(tmp_path, ev, scores, weak, run)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    validate_metrics(on_disk)
    assert on_disk == doc
    assert set(doc["models"]) == {"model1", "model2", "model3", "model4"}
    assert doc["not_runnable"] == {"model_wd": "no scores in this run"}
    assert set(doc["baselines"]) == {"equal_weight", "alpha158_lgbm"}
    assert doc["oracle_rank_ic_mean"]["csi_all"] == pytest.approx(1.0)
    assert doc["orderings"]["week > day"]["holds"] is True  # week is the least noisy score
    assert doc["orderings"]["model1..4 > best single dataset"]["holds"] is False
    broken = json.loads(json.dumps(doc))
    del broken["models"]["model1"]["csi_all"]["icir"]
    with pytest.raises(jsonschema.ValidationError, match="icir"):
        validate_metrics(broken)
    broken = json.loads(json.dumps(doc))
    broken["datasets"]["weekly"] = broken["datasets"].pop("week")
    with pytest.raises(jsonschema.ValidationError):
        validate_metrics(broken)
    assert SCHEMA["required"] == ["datasets", "models", "baselines", "portfolios", "oracle_rank_ic_mean", "run"]
    # the report is built from the folder alone
    html = write_html(tmp_path).read_text()
    for part in ("Table 1", "Table 2", "Table 7", "model4", "alpha158_lgbm", "data:image/png;base64",
                 "data: synthetic market v3 (preset tiny, seed 0)"):
        assert part in html
    assert "{" not in html.split("data: ")[1].split("·")[0]  # the source in words, not a Python dict
    assert pl.read_parquet(tmp_path / "scores.parquet").columns == ["code", "date", "model", "score"]


def test_equal_weight_is_the_mean_of_z_scored_outputs():
    d = date(2020, 1, 3)
    weak = pl.DataFrame({"code": ["a", "b", "c"] * 2, "date": [d] * 6, "dataset": ["day"] * 3 + ["week"] * 3,
                         "output": [1.0, 2.0, 3.0, 30.0, 10.0, 20.0]})
    s = equal_weight(weak, [d]).sort("code")
    np.testing.assert_allclose(s["score"].to_numpy(), [(-1 + 1) / 2, (0 - 1) / 2, (1 + 0) / 2])


@pytest.mark.slow
def test_combiner_fits_are_registered_in_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(tmp_path))
    import mlflow

    from factor_pipeline.models.combiner import CombinerConfig, rolling_scores
    from factor_pipeline.models.tracking import log_combiner_fit

    rng = np.random.default_rng(0)
    rows = []
    for w in range(80):
        d = date(2016, 1, 8) + timedelta(weeks=w)
        x = rng.normal(size=60)
        rows.append(pl.DataFrame({"code": [str(i) for i in range(60)], "date": d, "f": x,
                                  "y_std": x + rng.normal(size=60), "realised_on": d + timedelta(days=15)}))
    df = pl.concat(rows)
    pred = sorted(d for d in df["date"].unique().to_list() if d.year == 2017)
    cfg = CombinerConfig(n_estimators=10, train_years=1)
    _, fits = rolling_scores(df.select("code", "date", "f"), df, pred, cfg)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert log_combiner_fit("model3", fits[0], cfg, ("week", "day", "ms", "l2"), {}, uri) == "1"
    assert log_combiner_fit("model3", fits[0], cfg, ("week", "day", "ms", "l2"), {}, uri) == "2"
    client = mlflow.MlflowClient(uri)
    versions = client.search_model_versions("name='factor_pipeline.score.model3'")
    assert len(versions) == 2
    run = client.get_run(versions[0].run_id)
    assert run.data.params["last_label_realised_on"] < "2017-01-01"
    assert not (tmp_path / "mlruns").exists() or any((tmp_path / "mlruns").iterdir())


def test_daily_only_orderings_compare_on_model_wd_dates():
    from datetime import date, timedelta

    from factor_pipeline.report.metrics import orderings

    days = [date(2017, 1, 6) + timedelta(weeks=k) for k in range(104)]
    rows = []
    for k, d in enumerate(days):
        first_year = k < 52
        rows += [("day", d, 0.10), ("week", d, 0.02 if first_year else 0.12)]  # week weak only in year one
        if not first_year:
            rows.append(("model_wd", d, 0.11))
    ic = pl.DataFrame(rows, schema=["name", "date", "rank_ic"], orient="row").with_columns(universe=pl.lit("csi_all"))
    o = orderings(ic)
    assert o["week > day"]["holds"] is False  # over both years: 0.07 vs 0.10
    assert o["week > day (on model_wd's dates)"] == {"holds": True, "values": [0.12, 0.1]}
    assert o["model_wd > week and day"] == {"holds": False, "values": [0.11, 0.12, 0.1]}
    assert o["model1..4 > best single dataset"]["holds"] is None  # Model1-4 absent: cannot be said
