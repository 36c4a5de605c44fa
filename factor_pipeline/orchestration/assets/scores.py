"""The scores asset: Model1-Model4 (XGBoost over weak factors) per rebalance week (table `scores`)."""

import warnings
from datetime import timedelta

import dagster as dg
import polars as pl

from factor_pipeline.audit.checks import every_date_scored, finite_scores, labels_before_prediction
from factor_pipeline.config import COMBINER, home, training_for_market
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.datasets.store import panel_from_warehouse
from factor_pipeline.datasets.weekly import daily_label_table, history_start
from factor_pipeline.evaluation.ic import ic_summary, rank_ic
from factor_pipeline.models.baselines import alpha_models, equal_weight
from factor_pipeline.models.cadence import group_by_period
from factor_pipeline.models.combiner import MODELS, CombinerConfig
from factor_pipeline.models.fit_cache import CombinerCache
from factor_pipeline.models.peer import PeerConfig
from factor_pipeline.models.scores import model_scores
from factor_pipeline.models.tracking import log_combiner_fit, log_peer_fit
from factor_pipeline.orchestration.assets.datasets import LABEL_WEEKS
from factor_pipeline.orchestration.partitions import rebalance_weeks, window_dates
from factor_pipeline.orchestration.resources import MlflowResource, WarehouseResource

warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

HISTORY = dg.TimeWindowPartitionMapping(start_offset=-52 * 4 - 4)
ALL_BEFORE = dg.TimeWindowPartitionMapping(start_offset=-52 * 12, allow_nonexistent_upstream_partitions=True)
DAILY = {"weak_factors": "weak_factors_daily", "labels": "labels_daily"}


class ScoresConfig(dg.Config):
    n_estimators: int = 300
    max_depth: int = 3
    learning_rate: float = 0.03
    min_child_share: float = 0.025
    train_years: int = 3
    retrain_months: int = 12  # retrain cadence: 12 = yearly (the report), or 6, 4, 3, 2, 1
    seed: int = 0
    # how the tree / mean / blend choice is validated: folds | walk_forward; empty: what goes with the market
    # in the warehouse (config.COMBINER by training preset), so every entry point combines alike
    validation: str = ""

    def combiner(self, preset: str = "") -> CombinerConfig:
        validation = self.validation or COMBINER.get(preset, {}).get("validation", "folds")
        return CombinerConfig(n_estimators=self.n_estimators, max_depth=self.max_depth,
                              learning_rate=self.learning_rate, min_child_share=self.min_child_share,
                              train_years=self.train_years, retrain_months=self.retrain_months, seed=self.seed,
                              validation=validation)


def _has_fit(fits: dict, d) -> bool:
    """A date is owed a score when some model has a fit whose period starts on or before it."""
    return any(f.first_prediction is not None and f.first_prediction <= d for fs in fits.values() for f in fs)


def _checks(asset: str, table: pl.DataFrame, fits: list) -> list[dg.AssetCheckResult]:
    ok, details = finite_scores(table)
    out = [dg.AssetCheckResult(asset_key=asset, check_name="finite_scores", passed=ok, metadata=details)]
    ok, details = labels_before_prediction(fits)
    out.append(dg.AssetCheckResult(asset_key=asset, check_name="point_in_time", passed=ok, metadata=details))
    return out


def _read(warehouse: WarehouseResource, context: dg.AssetExecutionContext, config: ScoresConfig,
          tables: tuple[str, ...]) -> tuple:
    """The tables over the weeks and the training years before them, and the signal dates of the weeks.

    `weak_factors` and `labels` are read daily (`weak_factors_daily`, `labels_daily`: every trading
    date, the combiner's training rows) where the warehouse has them; predictions stay on the signal
    dates of the weekly tables."""
    wh = warehouse.get()
    start, end = window_dates(context)
    since = start - timedelta(days=366 * (config.train_years + 1))
    with wh.connect(read_only=True) as con:
        have = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        span = f"date >= DATE '{since}' AND date < DATE '{end}'"
        frames = [con.sql(f"SELECT * FROM {DAILY.get(t, t) if DAILY.get(t) in have else t} WHERE {span}").pl()
                  for t in tables]
        dates = [r[0] for r in con.execute(
            f"SELECT DISTINCT date FROM weak_factors WHERE date >= DATE '{start}' AND date < DATE '{end}' "
            "ORDER BY date").fetchall()] if "weak_factors" in have else []
    return wh, start, end, dates, frames


def _out_of_fold(wh, dates: list, months: int, labels: pl.DataFrame) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """The weeks' periods' out-of-fold weak factors where the weak factors were trained with `folds` (a weak-factor
    run without them clears its periods' rows), and the labels with the daily labels of their dates added (they
    reach back before the run's own weeks): what each period's combiner learns from. None where there are none."""
    if not dates:
        return None, labels
    periods = ", ".join(f"'{p}'" for p in group_by_period(dates, months))
    with wh.connect(read_only=True) as con:
        if "weak_factors_oof" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}:
            return None, labels
        oof = con.sql(f"SELECT * FROM weak_factors_oof WHERE period IN ({periods})").pl()
    if oof.height == 0:
        return None, labels
    missing = sorted(set(oof["date"].unique()) - set(labels["date"].unique()))
    if missing:
        panel = panel_from_warehouse(wh, history_start(missing[0], 30), max(missing) + timedelta(weeks=LABEL_WEEKS),
                                     frozenset())
        extra = daily_label_table(panel, [panel.date_index(d) for d in missing])
        labels = pl.concat([labels, extra.select(labels.columns)], how="vertical_relaxed") if labels.height else extra
    return oof, labels


@dg.asset(
    group_name="scores",
    deps=[dg.AssetDep(f"weak_factors_{n}", partition_mapping=HISTORY) for n in DATASETS]
    + [dg.AssetDep("labels", partition_mapping=HISTORY), dg.AssetDep("daily_bars", partition_mapping=ALL_BEFORE)],
    partitions_def=rebalance_weeks,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"xgboost", "duckdb", "mlflow"},
    check_specs=[dg.AssetCheckSpec("finite_scores", asset="scores", description="no NaN or infinite score"),
                 dg.AssetCheckSpec("every_date_scored", asset="scores",
                                   description="every runnable model scores every signal date of the weeks"),
                 dg.AssetCheckSpec("point_in_time", asset="scores",
                                   description="every fit saw only labels realised before its first prediction")],
    description="Model1-Model4 scores: XGBoost over the weak factors of each model's datasets, retrained per "
                "year on labels realised before it (table `scores`: code, date, model, score). Every fit is "
                "an MLflow run and a version of `factor_pipeline.score.model<N>`.",
)
def scores(context: dg.AssetExecutionContext, config: ScoresConfig, warehouse: WarehouseResource,
           mlflow: MlflowResource) -> dg.MaterializeResult:
    wh, start, end, dates, (weak, labels) = _read(warehouse, context, config, ("weak_factors", "labels"))
    cfg = config.combiner(training_for_market(wh.source_identity())[0])
    oof, labels = _out_of_fold(wh, dates, cfg.retrain_months, labels)
    res = model_scores(weak, labels, dates, cfg, CombinerCache(home() / "models" / "combiner"), oof)
    tags = {"dagster_run_id": context.run_id, "partitions": f"{start}..{end - timedelta(days=1)}"}
    # a fit read from the cache was tracked by the run that fitted it
    versions = {m: [log_combiner_fit(m, f, cfg, MODELS[m], tags, mlflow.uri()) for f in fits if not f.reused]
                for m, fits in res.fits.items()}
    if res.scores.height:
        wh.replace_rows("scores", res.scores, f"date >= DATE '{start}' AND date < DATE '{end}'")
    meta: dict = {"rows": res.scores.height, "signal_dates": len(dates), "validation": cfg.validation,
                  "out_of_fold_rows": 0 if oof is None else oof.height,
                  "fits_reused": sum(f.reused for fs in res.fits.values() for f in fs),
                  "training_rows_per_fit": round(float(sum(f.train_rows for fs in res.fits.values() for f in fs))
                                                 / max(1, sum(len(fs) for fs in res.fits.values())))}
    for model, why in res.not_runnable.items():
        context.log.warning(f"{model} is not runnable: {why}")
        meta[f"{model}_not_runnable"] = why
    runnable = sorted(res.fits)
    checks = _checks("scores", res.scores, [f for fits in res.fits.values() for f in fits])
    ok, details = every_date_scored(res.scores, [d for d in dates if _has_fit(res.fits, d)], runnable)
    checks.append(dg.AssetCheckResult(asset_key="scores", check_name="every_date_scored", passed=ok,
                                      metadata=details))
    for model, ics in res.oos_ic.items():
        s = ic_summary(ics)
        meta[f"{model}_rank_ic_mean"], meta[f"{model}_icir"] = s["rank_ic_mean"], s["icir"]
        meta[f"{model}_ic_positive_share"] = s["ic_positive_share"]
        meta[f"{model}_fits"] = len(res.fits[model])
        meta[f"{model}_chosen"] = ", ".join(f"{f.period}: {f.chosen}" for f in res.fits[model]) or "none"
        meta[f"{model}_registered_versions"] = ", ".join(versions[model]) or "none"
    return dg.MaterializeResult(metadata=meta, check_results=checks)


@dg.asset(
    group_name="scores",
    deps=[dg.AssetDep(f"weak_factors_{n}", partition_mapping=HISTORY) for n in DATASETS]
    + [dg.AssetDep("labels", partition_mapping=HISTORY), dg.AssetDep("daily_bars", partition_mapping=ALL_BEFORE)],
    partitions_def=rebalance_weeks,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"lightgbm", "duckdb", "mlflow"},
    check_specs=[dg.AssetCheckSpec("finite_scores", asset="baseline_scores", description="no NaN or infinite score"),
                 dg.AssetCheckSpec("point_in_time", asset="baseline_scores",
                                   description="every LightGBM fit saw only labels realised before its first "
                                               "prediction")],
    description="The baselines and the Alpha158 models on the signal dates (table `baseline_scores`): "
                "`equal_weight` (mean of the datasets' z-scored outputs), `alpha158_lgbm` (Qlib's LightGBM on "
                "Alpha158 with Qlib's settings: every trading date of an expanding window, half-year validation, "
                "early stopping, yearly refit) and `model_wd_alpha` (the same over Alpha158 + the week/day weak "
                "factors). Every fit is an MLflow run and a version of `factor_pipeline.baseline.<name>`.",
)
def baseline_scores(context: dg.AssetExecutionContext, config: ScoresConfig, warehouse: WarehouseResource,
                    mlflow: MlflowResource) -> dg.MaterializeResult:
    wh, start, end, dates, (weak, labels) = _read(warehouse, context, config, ("weak_factors", "labels"))
    with wh.connect(read_only=True) as con:
        first = con.execute("SELECT min(date) FROM daily_bars").fetchone()[0]
    panel = panel_from_warehouse(wh, first, end - timedelta(days=1), frozenset())
    ew = equal_weight(weak, dates).with_columns(model=pl.lit("equal_weight"))
    cfg = PeerConfig(seed=config.seed)
    res = alpha_models(panel, weak, dates, cfg, home() / "models" / "peer")
    tags = {"dagster_run_id": context.run_id, "partitions": f"{start}..{end - timedelta(days=1)}"}
    meta: dict = {"signal_dates": len(dates)}
    frames, fits = [], []
    for name, (sc, fs) in res.items():
        versions = [log_peer_fit(name, f, cfg, tags, mlflow.uri()) for f in fs if not f.reused]
        frames.append(sc.with_columns(model=pl.lit(name)))
        fits += fs
        meta[f"{name}_fits"] = len(fs)
        meta[f"{name}_fits_reused"] = sum(f.reused for f in fs)
        meta[f"{name}_registered_versions"] = ", ".join(versions) or "none"
        meta[f"{name}_best_iterations"] = ", ".join(f"{f.year}: {f.best_iteration}" for f in fs) or "none"
        meta[f"{name}_valid_rank_ic"] = ", ".join(f"{f.year}: {f.valid_rank_ic:.4f}" for f in fs) or "none"
    # like Model1-4, the baselines score only the years the peer has a fit for: the same dates are compared
    peer_dates = res["alpha158_lgbm"][0]["date"].unique().implode()
    frames.append(ew.filter(pl.col("date").is_in(peer_dates)))
    table = pl.concat([f.select("code", "date", "model", pl.col("score").cast(pl.Float64)) for f in frames])
    if table.height:
        wh.replace_rows("baseline_scores", table, f"date >= DATE '{start}' AND date < DATE '{end}'")
    meta["rows"] = table.height
    j = table.join(labels.select("code", "date", "y_raw"), on=["code", "date"]).drop_nulls("y_raw")
    for (model,), g in j.group_by("model"):
        ics = [rank_ic(d["score"].to_numpy(), d["y_raw"].to_numpy()) for _, d in g.group_by("date") if d.height >= 10]
        meta[f"{model}_rank_ic_mean"] = ic_summary(ics)["rank_ic_mean"]
    return dg.MaterializeResult(metadata=meta, check_results=_checks("baseline_scores", table, fits))
