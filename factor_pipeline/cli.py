"""`factor-pipeline`: simulate, import, run and look at the pipeline from a shell."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from factor_pipeline.config import PRESETS, home, preset, training_preset_for


def _date(s: str) -> date:
    return date.fromisoformat(s)


def cmd_simulate(args: argparse.Namespace) -> int:
    from factor_pipeline.market.simulator import simulate_market

    summary = simulate_market(preset(args.preset), args.seed, Path(args.out))
    print(json.dumps(summary, indent=2))
    return 0


def _prepare(source, replace: bool) -> None:
    from factor_pipeline.market.warehouse import SourceMismatch, Warehouse

    wh = Warehouse()
    if replace:
        wh.reset()
    held = wh.source_identity()
    if held and held != source.identity:
        raise SourceMismatch(f"the warehouse {wh.path} holds {held}, not {source.identity}; "
                             "pass --replace or use another FACTOR_PIPELINE_HOME")


def _validate_files(source) -> dict[str, int]:
    """Imported files are checked whole before anything is written."""
    from factor_pipeline.market.oddities import count_oddities, describe_oddities
    from factor_pipeline.market.validate import validate
    from factor_pipeline.market.warehouse import connect_memory

    con = connect_memory()
    report = validate(con, source.relations())
    report.raise_if_failed()
    print("validated: " + ", ".join(f"{k} {v:,} rows" for k, v in report.rows.items()))
    odd = count_oddities(con, source.relations())
    print("oddities of the data (legal under the contract; count and how each is handled):")
    for line in describe_oddities(odd):
        print("  " + line)
    return odd


def _load(source, end: date | None) -> dict:
    from factor_pipeline.orchestration.runner import materialize_market

    run = materialize_market(source, end=end)
    for t in ("intraday_bars", "l2_daily"):
        if t in run.absent:
            print(f"note: the market has no {t}; the datasets that need it are skipped")
    print(f"loaded weeks {run.first_week} .. {run.last_week} into {home() / 'warehouse.duckdb'}")
    for k, v in sorted(run.rows.items()):
        if k not in run.absent:
            print(f"  {k:<14} {v:>12,} rows")
    return {"weeks": [run.first_week, run.last_week], "rows": run.rows, "absent": run.absent,
            "dagster_runs": run.run_ids}


def _universe(name: str | None) -> str:
    """The sample universe of the datasets and models: `--universe`, else what the warehouse was last run with."""
    from factor_pipeline.datasets.samples import SAMPLE_UNIVERSES, check_universe, indices_within
    from factor_pipeline.market.warehouse import Warehouse

    wh = Warehouse()
    if name:
        wh.set_universe(check_universe(name))
    chosen = wh.universe()
    print(f"sample universe: {chosen} ({' | '.join(SAMPLE_UNIVERSES[chosen])} members at each date); enhanced indices: "
          f"{', '.join(indices_within(chosen)) or 'none'}")
    return chosen


def _datasets(source_args: tuple, start: date, end: date) -> dict:
    from factor_pipeline.market.warehouse import connect_memory
    from factor_pipeline.orchestration.runner import materialize_datasets

    source = _source(*source_args)
    lo, hi = source.date_range(connect_memory())
    run = materialize_datasets(max(start, lo), min(end, hi))
    print(f"datasets for rebalance weeks {run.first_week} .. {run.last_week}:")
    for k, md in sorted(run.metadata.items()):
        if md.get("absent"):
            print(f"  {k:<14} skipped: {md['reason']}")
        elif k == "labels":
            print(f"  {k:<14} {md['rows']:>9,} rows, realised {md['realised_share']:.1%}")
        elif "samples" not in md:
            print(f"  {k:<18} {md['rows']:>9,} rows (stock, signal date)")
        else:
            print(f"  {k:<14} {md['samples']:>9,} samples of {md['sample_shape']:<14} over {md['signal_dates']} "
                  f"dates, {md['stocks_covered']} stocks, NaN before filling {md['nan_share_before_filling']:.2%}")
    return {"weeks": [run.first_week, run.last_week], "assets": run.metadata, "dagster_run": run.run_id}


def _weak_factors(datasets: dict, training: str, seed: int) -> dict:
    from factor_pipeline.orchestration.runner import materialize_weak_factors

    skipped = [k.removeprefix("dataset_") for k, md in datasets["assets"].items() if md.get("absent")]
    run = materialize_weak_factors(datasets["weeks"][0], datasets["weeks"][1], training, seed)
    print(f"weak factors (training preset {training!r}), out of sample, 10-day RankIC on the signal dates:")
    for k, md in sorted(run.metadata.items()):
        name = k.removeprefix("weak_factors_")
        if name in skipped or not md.get("rows"):
            print(f"  {name:<6} no weak factors ({'dataset not available' if name in skipped else 'no samples'})")
            continue
        print(f"  {name:<6} RankIC {md['oos_rank_ic_mean']:+.4f}  ICIR {md['oos_icir']:+.2f}  "
              f"IC>0 {md['oos_ic_positive_share']:.0%}  top-group turnover {md['top_group_turnover_weekly']:.0%}/week  "
              f"fits trained {md['fits_trained']}, reused {md['fits_reused']}")
    return {"assets": run.metadata, "dagster_run": run.run_id}


def _scores(weeks: list[str]) -> dict:
    from factor_pipeline.models.combiner import MODELS
    from factor_pipeline.orchestration.runner import materialize_scores

    run = materialize_scores(weeks[0], weeks[1])
    md = run.metadata.get("scores", {})
    print("scores (XGBoost over weak factors), out of sample, 10-day RankIC on the signal dates:")
    for model, datasets in MODELS.items():
        if f"{model}_not_runnable" in md:
            print(f"  {model} not runnable: {md[f'{model}_not_runnable']}")
        elif md.get(f"{model}_fits") == 0:
            print(f"  {model} ({' + '.join(datasets)}): no fit yet (needs a year of weak factors before its first "
                  "prediction)")
        elif f"{model}_rank_ic_mean" in md:
            print(f"  {model} ({' + '.join(datasets)}): RankIC {md[f'{model}_rank_ic_mean']:+.4f}  "
                  f"ICIR {md[f'{model}_icir']:+.2f}  IC>0 {md[f'{model}_ic_positive_share']:.0%}")
    return {"assets": run.metadata, "dagster_run": run.run_id}


def _portfolios(start: date, end: date) -> dict:
    from factor_pipeline.orchestration.runner import materialize_portfolios

    run = materialize_portfolios(start, end)
    md = {**run.metadata.get("target_weights", {}), **run.metadata.get("backtest", {})}
    print(f"risk model: bias statistic {run.metadata.get('risk_model', {}).get('bias_statistic')} (about 1 when "
          "calibrated)")
    print(f"enhanced portfolios: {md.get('portfolios')} (index x model) over {md.get('weeks')} weeks, median solve "
          f"{md.get('solve_seconds_median')} s, largest constraint violation {md.get('max_constraint_violation'):.1e}, "
          f"weeks relaxed {md.get('weeks_relaxed')}; latest targets: {md.get('latest_csv')}")
    for k, v in sorted(md.items()):
        if k.endswith("_excess_ann") and v is not None:
            print(f"  {k.removesuffix('_excess_ann'):<16} excess {v:+.1%}/yr")
    return {"assets": run.metadata, "dagster_run": run.run_id}


def _report(name: str, start: date, end: date) -> dict:
    from factor_pipeline.orchestration.runner import materialize_report

    run = materialize_report(name, start, end)
    out = home() / "reports" / name
    doc = json.loads((out / "metrics.json").read_text())
    print(f"evaluation (out of sample, csi_all; {len(doc['datasets'])} datasets, {len(doc['models'])} models, "
          f"{len(doc['baselines'])} baselines):")
    for section in ("datasets", "models", "baselines"):
        for n, per in doc[section].items():
            s = per.get("csi_all") or {}
            top = s.get("top_excess_ann")
            print(f"  {n:<17} RankIC {s.get('rank_ic_mean') or float('nan'):+.4f}  top-group excess/yr "
                  f"{top if top is None else f'{top:+.1%}'}")
    if doc["oracle_rank_ic_mean"]:
        print(f"  {'oracle (ceiling)':<17} RankIC {doc['oracle_rank_ic_mean'].get('csi_all') or float('nan'):+.4f}")
    for k, v in doc["orderings"].items():
        print(f"  ordering {k}: {'holds' if v['holds'] else 'fails' if v['holds'] is False else 'n/a'}")
    print(f"report: {out / 'report.html'}\nmetrics: {out / 'metrics.json'}")
    return {"assets": run.metadata, "dagster_run": run.run_id}


def cmd_inspect(args: argparse.Namespace) -> int:
    from factor_pipeline.datasets.inspect import write_inspect
    from factor_pipeline.market.warehouse import Warehouse

    arrays = write_inspect(Warehouse(), args.dataset, args.date, Path(args.out))
    realised = int(arrays["label"].size - np.isnan(arrays["label"]).sum())
    print(f"wrote {args.out}: x {arrays['x'].shape} for {len(arrays['codes'])} stocks on {args.date}; "
          f"labels realised for {realised}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from factor_pipeline.market.sources import file_source

    source = file_source(args.folder)
    _validate_files(source)
    _prepare(source, args.replace)
    _load(source, None)
    return 0


def _measured(fn, *args):
    """In the stage's process: the stage's result and that process's own peak resident memory (GiB)."""
    out = fn(*args)
    return out, _own_peak_gb()


def _own_peak_gb() -> float:
    """This process's own peak resident memory, GiB: VmHWM on Linux (ru_maxrss survives exec, so a process
    spawned by a large one would report its parent's peak), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 2**20, 2)  # kB
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # kB on Linux


def _stage_init(parent: int, *labels) -> None:
    """A stage process's initialiser. It ends with its parent (Linux: a SIGTERM when the parent dies, so a
    killed `run` leaves no stage training on as an orphan; Dagster records its run as failed), and tags its
    Dagster runs with the `run`'s name and span (Dagster is imported there, not in the parent)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    import threading

    threading.Thread(target=_end_with, args=(parent,), daemon=True, name="end-with-parent").start()
    if labels:
        from factor_pipeline.orchestration.runner import label_runs

        label_runs(*labels)


def _end_with(parent: int, grace: float = 10.0) -> None:
    """Exit once the parent is gone. The SIGTERM above lets Dagster record its run as failed, but Dagster
    catches that signal, and the pool's worker would then wait for a next task that never comes; `grace`
    seconds after the parent's death the process ends whatever it is doing (as a SIGKILL would)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    time.sleep(grace)
    os._exit(1)


def in_own_process(fn, *args, labels: tuple = ()):
    """Run one stage of `run` in a fresh process and wait for it: the machine then needs the largest
    stage's memory (plus this small parent), not every stage's leftovers stacked in one process (Dagster
    runs, the MLflow store and the warehouse are on disk, so nothing else passes between stages).
    Returns (result, the stage process's peak RSS in GiB). `labels`: label_runs' arguments."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # not fork: the parent's thread pools must not be copied
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_stage_init,
                             initargs=(os.getpid(), *labels)) as pool:
        return pool.submit(_measured, fn, *args).result()


class StageClock:
    """Wall seconds of each stage of a `run` and the peak resident memory of the process that ran it
    (each stage runs in its own), printed at the end and kept in run.json, with the parent's own peak."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_gb: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str, peak_gb: float) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._t, 1)
        self.peak_gb[stage] = peak_gb
        self._t = now

    def split(self) -> str:
        total = sum(self.seconds.values())
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        return f"{parts}; total {total / 60:.1f} min"

    def memory(self) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in self.peak_gb.items())

    @staticmethod
    def parent_gb() -> float:
        return _own_peak_gb()


def _market(data: str | None, preset_name: str, seed: int, replace: bool, end: date,
            universe: str | None) -> tuple:
    """The run's first stage, in its own process like the others: the market source (imported files checked
    whole, or the simulated market generated once), the warehouse loaded, the sample universe. The parent
    only spawns stages and keeps their summaries, so it imports neither Dagster nor DuckDB and holds no
    table: its memory stays small beside the stage that runs."""
    if not data:
        print(f"market: synthetic preset {preset_name!r}, seed {seed} (cached under {home() / 'sources'})")
    source = _source(data, preset_name, seed)
    oddities = _validate_files(source) if data else None
    _prepare(source, replace)
    summary = _load(source, end)
    summary["oddities"] = oddities
    summary["universe"] = _universe(universe)
    return source.spec, summary


def _source(data: str | None, preset_name: str, seed: int):
    """The run's market source, made in each stage process that reads it (the simulated one is generated
    once and cached; a file source is only its folder and a stamp)."""
    from factor_pipeline.market.sources import file_source, synthetic_source

    return file_source(data) if data else synthetic_source(preset_name, seed)


def cmd_run(args: argparse.Namespace) -> int:
    if args.start > args.end:
        raise SystemExit(f"--start {args.start} is after --end {args.end}")
    clock = StageClock()
    name = args.name or (f"{args.preset}-seed{args.seed}" if not args.data else Path(args.data).name)
    labels = (name, args.start, args.end)

    def stage(label: str, fn, *fn_args):
        result, peak = in_own_process(fn, *fn_args, labels=labels)
        clock.lap(label, peak)
        return result

    source_args = (args.data, args.preset, args.seed)
    spec, summary = stage("market", _market, *source_args, args.replace, args.end, args.universe)
    summary["datasets"] = stage("datasets", _datasets, source_args, args.start, args.end)
    training = training_preset_for(spec)
    summary["weak_factors"] = stage("weak factors", _weak_factors, summary["datasets"], training, args.seed)
    summary["scores"] = stage("scores", _scores, summary["datasets"]["weeks"])
    if summary["scores"]["assets"].get("scores", {}).get("rows"):
        summary["portfolios"] = stage("portfolio", _portfolios, args.start, args.end)
    else:
        print("enhanced portfolios: none, no model has scores in the span (a combiner's first fit needs a year "
              "of out-of-sample weak factors before it)")
    summary["report"] = stage("report", _report, name, args.start, args.end)
    out = home() / "reports" / name
    out.mkdir(parents=True, exist_ok=True)
    record = {"data": spec, "preset": None if args.data else args.preset,
              "universe": summary["universe"], "training_preset": training, "seed": args.seed,
              "start": str(args.start), "end": str(args.end), "seconds_by_stage": clock.seconds,
              "peak_rss_gb_by_stage": clock.peak_gb, "peak_rss_gb_parent": clock.parent_gb(), "market": summary}
    (out / "run.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"run record: {out / 'run.json'}")
    print(f"MLflow: {home() / 'mlflow.db'} (mlflow ui --backend-store-uri sqlite:///{home() / 'mlflow.db'})")
    print(f"time by stage: {clock.split()}")
    print(f"peak memory (GiB) of each stage's process: {clock.memory()}; the parent process {clock.parent_gb():.2f}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from factor_pipeline.report.readme import results_from_folder

    if not (args.folder / "metrics.json").exists():
        raise SystemExit(f"{args.folder / 'metrics.json'} not found: give a run's report folder")
    print(results_from_folder(args.folder), end="")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from factor_pipeline.orchestration.instance import dagster_home

    dagster_home()
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "factor_pipeline.definitions",
           "-h", "127.0.0.1", "-p", str(args.port)]
    print(f"Dagster UI on http://127.0.0.1:{args.port} (DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    # a shell's background job inherits SIGINT as ignored: restore it for dagster dev, and turn our
    # SIGINT/SIGTERM into the SIGINT that dagster dev shuts down cleanly on
    proc = subprocess.Popen(cmd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def forward(signum, frame) -> None:
        proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return proc.wait()


def build_parser() -> argparse.ArgumentParser:
    from factor_pipeline.datasets.samples import SAMPLE_UNIVERSES

    p = argparse.ArgumentParser(prog="factor-pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a synthetic A-share market (contract tables) to a folder")
    s.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("import", help="validate a folder of contract tables (Parquet/CSV) and load it")
    s.add_argument("folder")
    s.add_argument("--replace", action="store_true", help="drop a warehouse that holds another market")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("run", help="materialise the pipeline for a date range")
    s.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--data", help="folder of contract tables instead of the synthetic market")
    s.add_argument("--start", type=_date, default=date(2017, 1, 1))
    s.add_argument("--end", type=_date, default=date(2023, 12, 31))
    s.add_argument("--name", help="report folder name under $FACTOR_PIPELINE_HOME/reports")
    s.add_argument("--universe", choices=list(SAMPLE_UNIVERSES),
                   help="sample universe of datasets, models and portfolios (default: the warehouse's last, "
                        "else csi_all); csi800 = csi300 | csi500 members fits real data on a CPU")
    s.add_argument("--replace", action="store_true", help="drop a warehouse that holds another market")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("inspect", help="write what a network sees for one dataset and date to a .npz")
    s.add_argument("dataset", choices=["week", "msnew", "day", "ms", "l2"])
    s.add_argument("--date", type=_date, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("results", help="print a run's results section for the README (Markdown) from its report folder")
    s.add_argument("folder", type=Path, help="e.g. data/reports/demo-seed0 (metrics.json and run.json)")
    s.set_defaults(func=cmd_results)

    s = sub.add_parser("ui", help="start the Dagster UI on 127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=cmd_ui)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
