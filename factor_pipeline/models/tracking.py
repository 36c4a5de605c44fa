"""MLflow tracking of every weak-factor training, and a local cache of trained models.

Each fit is a run in the experiment `factor_pipeline.weak` (parameters, per-epoch loss and
validation RankIC, the data hash, the prediction period) and a version of the registered model
`factor_pipeline.weak.<dataset>`. The store defaults to `sqlite:///<home>/mlflow.db` with
artifacts under `<home>/mlruns`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from factor_pipeline.config import home
from factor_pipeline.models.network import WeakFactorConfig, WeakFactorNet
from factor_pipeline.models.trainer import FitResult, TrainConfig, TrainData

EXPERIMENT = "factor_pipeline.weak"
SCORE_EXPERIMENT = "factor_pipeline.score"


def default_tracking_uri() -> str:
    return f"sqlite:///{home() / 'mlflow.db'}"


def ensure_store(uri: str) -> None:
    """A new SQLite MLflow store is built whole beside its path and linked into place (atomic; the first
    process wins): MLflow creates its tables through dozens of migrations, and a run killed among them
    left a store that every later run failed to open ("table ... already exists")."""
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///"))
    if path.exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        store = SqlAlchemyStore(f"sqlite:///{tmp}", (home() / "mlruns").as_uri())
        store.engine.dispose()
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process built it first: theirs stands
            pass
    finally:
        tmp.unlink(missing_ok=True)


def data_hash(data: TrainData, dates: list[int], lookback: int) -> str:
    """Fingerprint of what a fit learns from: its dates, the stocks that are samples on them, their
    labels and their prices over the window the inputs read (the dataset's `lookback` trading days up to
    each date). Independent of where the panel starts and which other stocks it holds, so a one-week run,
    whose panel starts `lookback` days before the first training date, finds the model a multi-year run
    trained (a fixed 150-day window reached before such a panel for the 30-day datasets, and the Friday
    job retrained day, ms, msnew and l2 every week)."""
    h = hashlib.sha256()
    d = np.asarray(dates)
    rows = np.flatnonzero(data.samples[:, d].any(axis=1))
    h.update(np.asarray(data.dates)[d].astype("datetime64[D]").tobytes())
    h.update(np.asarray(data.codes)[rows].astype("U12").tobytes())
    h.update(np.ascontiguousarray(data.samples[rows][:, d]).tobytes())
    h.update(np.nan_to_num(data.y_std[rows][:, d]).astype(np.float32).tobytes())
    lo = max(0, int(d.min()) - lookback + 1)
    window = data.base.pxt[torch.as_tensor(rows, device=data.base.pxt.device)][:, :, lo: int(d.max()) + 1]
    h.update(window.nan_to_num().double().sum(dim=(0, 2)).cpu().numpy().round(6).tobytes())
    return h.hexdigest()[:20]


# settings added after fits were cached: at their default they stay out of the key, so those fits keep theirs
_NEW_DEFAULTS: dict[str, object] = {"label": "zscore", "lagged": 0, "dates_per_step": 1, "dataset_train_years": (),
                                 "dataset_seeds": (), "folds": 0, "fold": -1}


class ModelCache:
    """Trained weak-factor models on disk, keyed by dataset, configs and data hash."""

    def __init__(self, root: Path | None = None):
        self.root = root or home() / "models" / "weak"

    def key(self, name: str, cfg: TrainConfig, net_cfg: WeakFactorConfig, dhash: str) -> str:
        # the cadence only decides which dates a fit trains on, and those are in the data hash
        # instance_norm: the preset's list of datasets; what this dataset's network reads is in the net config
        train = {k: v for k, v in asdict(cfg).items()
                 if k not in ("retrain_months", "instance_norm") and not (k in _NEW_DEFAULTS and _NEW_DEFAULTS[k] == v)}
        net = {k: v for k, v in asdict(net_cfg).items() if not (k == "instance_norm" and not v)}
        blob = json.dumps({"dataset": name, "train": train, "net": net, "data": dhash},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def load(self, name: str, key: str, net_cfg: WeakFactorConfig) -> WeakFactorNet | None:
        path = self.root / name / f"{key}.pt"
        if not path.exists():
            return None
        model = WeakFactorNet(net_cfg)
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()

    def save(self, name: str, key: str, model: WeakFactorNet) -> Path:
        path = self.root / name / f"{key}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(model.state_dict(), tmp)
        tmp.rename(path)
        return path


def _experiment(tracking_uri: str | None, experiment: str) -> str:
    """Point mlflow at the store; the experiment's id (created with artifacts under the home)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network here, and none wanted
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)  # version-by-version chatter; the run page has it all
    uri = tracking_uri or default_tracking_uri()
    ensure_store(uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else mlflow.create_experiment(
        experiment, artifact_location=(home() / "mlruns").as_uri())
    return exp_id


def log_combiner_fit(model_name: str, fit, cfg, datasets: tuple[str, ...], tags: dict[str, str],
                     tracking_uri: str | None = None, registry_prefix: str = "factor_pipeline.score") -> str:
    """Log one yearly XGBoost fit (Model1-4 or a baseline) and register it as `<prefix>.<model_name>`."""
    exp_id = _experiment(tracking_uri, SCORE_EXPERIMENT)
    import mlflow
    import mlflow.xgboost

    with mlflow.start_run(experiment_id=exp_id, run_name=f"score.{model_name}.{fit.period}", tags=tags):
        mlflow.log_params({**{f"xgb.{k}": v for k, v in asdict(cfg).items()}, "model": model_name,
                           "datasets": "+".join(datasets), "year": fit.year, "period": fit.period,
                           "train_rows": fit.train_rows,
                           "train_first_date": str(fit.train_first), "train_last_date": str(fit.train_last),
                           "last_label_realised_on": str(fit.last_realised), "n_features": len(fit.features)})
        if np.isfinite(fit.train_rank_ic):
            mlflow.log_metric("train_rank_ic", fit.train_rank_ic)
        if hasattr(fit, "out_of_fold"):
            mlflow.log_param("rows", "out_of_fold" if fit.out_of_fold else "earlier_predictions")
        if getattr(fit, "chosen", None):
            mlflow.log_param("chosen", fit.chosen)  # also where nothing was validated (walk-forward, one year)
        if getattr(fit, "valid_rank_ic", None):
            mlflow.log_metrics({f"valid_rank_ic_{k}": v for k, v in fit.valid_rank_ic.items() if np.isfinite(v)})
        info = mlflow.xgboost.log_model(fit.model, name="model", pip_requirements=["xgboost"],
                                        registered_model_name=f"{registry_prefix}.{model_name}")
    return str(getattr(info, "registered_model_version", "") or "")


def log_fit(name: str, res: FitResult, cfg: TrainConfig, net_cfg: WeakFactorConfig, dhash: str, period: str,
            tags: dict[str, str], tracking_uri: str | None = None) -> str:
    """Log one fit to MLflow and register it; returns the registered version."""
    exp_id = _experiment(tracking_uri, EXPERIMENT)
    import mlflow
    import mlflow.pytorch

    with mlflow.start_run(experiment_id=exp_id, run_name=f"weak.{name}.{period}", tags=tags):
        mlflow.log_params({**{f"train.{k}": v for k, v in asdict(cfg).items()},
                           **{f"net.{k}": v for k, v in asdict(net_cfg).items()},
                           "dataset": name, "period": period, "data_hash": dhash,
                           "train_first_date": tags.get("train_first_date", ""),
                           "train_last_date": tags.get("train_last_date", "")})
        for h in res.history:
            mlflow.log_metrics({"loss": h["loss"], "valid_rank_ic": h["valid_rank_ic"]}, step=h["epoch"])
        mlflow.log_metrics({"best_valid_rank_ic": res.best_valid_ic, "best_epoch": res.best_epoch})
        info = mlflow.pytorch.log_model(res.model.cpu(), name="model", pip_requirements=["torch"],
                                        serialization_format="pickle",
                                        registered_model_name=f"factor_pipeline.weak.{name}")
    return str(getattr(info, "registered_model_version", "") or "")


def log_peer_fit(model_name: str, fit, cfg, tags: dict[str, str], tracking_uri: str | None = None) -> str:
    """Log one yearly LightGBM fit (the Alpha158 peer, model_wd_alpha) with its training and validation
    spans and early-stopping round; register it as `factor_pipeline.baseline.<model_name>`."""
    exp_id = _experiment(tracking_uri, SCORE_EXPERIMENT)
    import mlflow
    import mlflow.lightgbm

    with mlflow.start_run(experiment_id=exp_id, run_name=f"score.{model_name}.{fit.period}", tags=tags):
        mlflow.log_params({**{f"lgb.{k}": v for k, v in asdict(cfg).items()}, "model": model_name,
                           "year": fit.year, "train_rows": fit.train_rows,
                           "train_first_date": str(fit.train_first), "train_last_date": str(fit.train_last),
                           "valid_first_date": str(fit.valid_first), "valid_last_date": str(fit.valid_last),
                           "last_label_realised_on": str(fit.last_realised), "n_features": len(fit.features)})
        mlflow.log_metrics({"best_iteration": fit.best_iteration,
                            **({"valid_rank_ic": fit.valid_rank_ic} if np.isfinite(fit.valid_rank_ic) else {})})
        info = mlflow.lightgbm.log_model(fit.model, name="model", pip_requirements=["lightgbm"],
                                         registered_model_name=f"factor_pipeline.baseline.{model_name}")
    return str(getattr(info, "registered_model_version", "") or "")
