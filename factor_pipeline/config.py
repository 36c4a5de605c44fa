"""One place that says where generated state lives and which presets exist."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

HOME_ENV = "FACTOR_PIPELINE_HOME"


def home() -> Path:
    """The home folder of all generated state: `$FACTOR_PIPELINE_HOME`, else `./data`."""
    root = Path(os.environ.get(HOME_ENV) or "data").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class MarketPreset:
    """Size of a synthetic market: a preset trades breadth for run time."""

    name: str
    n_stocks: int
    start: date
    end: date
    index_sizes: dict[str, int] = field(default_factory=dict)
    # daily expected-return drift per unit of the cross-sectionally standardised planted alpha
    alpha_strength: float = 0.0018


PRESETS: dict[str, MarketPreset] = {
    # seconds: tests
    "tiny": MarketPreset(
        "tiny", 120, date(2016, 1, 4), date(2018, 6, 29),
        {"csi300": 8, "csi500": 12, "csi1000": 24},
    ),
    # minutes on 2 CPU cores: the README main job
    "demo": MarketPreset(
        "demo", 500, date(2015, 1, 5), date(2023, 12, 29),
        {"csi300": 30, "csi500": 50, "csi1000": 100},
    ),
    # the real market's breadth: for a GPU machine
    "full": MarketPreset(
        "full", 5000, date(2014, 1, 2), date(2023, 12, 29),
        {"csi300": 300, "csi500": 500, "csi1000": 1000},
    ),
}


def preset(name: str) -> MarketPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


# Weak-factor training per preset (models.trainer.TrainConfig fields): the demo trains on every
# 5th date of the last 3 years, a few epochs, so 5 datasets x 7 yearly fits fit on 2 CPU cores.
TRAINING: dict[str, dict] = {
    "tiny": {"epochs": 3, "patience": 1, "date_stride": 3, "train_years": 2},
    "demo": {"epochs": 4, "patience": 2, "date_stride": 5, "train_years": 3},
    "full": {"epochs": 12, "patience": 3, "date_stride": 1, "train_years": 4},
    # real daily bars on 2 CPU cores: every trading date of the window is a candidate, each epoch a
    # fresh draw of 60 of them (so 6 epochs reach ~360 dates, where a stride of 10 saw the same ~56
    # four times); validation on every 10th date of the purged tail (non-overlapping labels); two
    # seeds averaged. Chosen on 2017 (the first out-of-sample year): week 0.076 -> 0.089, day 0.087 ->
    # 0.100 against the former stride-10 preset; 2019 was not looked at to choose it.
    # `lagged` 1: a year's weak factors also average last year's two networks (both out of sample for the year)
    # where last year's fit learnt from a year of dates or more; chosen on 2017-2018 (benchmarks/lagged_members.py
    # on the cached fits), 2019 not looked at: 2018 csi_all week 0.117 -> 0.118, day 0.104 -> 0.108, their mean
    # 0.114 -> 0.117 (csi300 / csi500 lower, 0.096 -> 0.093, 0.097 -> 0.093); 2017, whose 2016 fits saw half a
    # year of 2015, fell (mean 0.098 -> 0.076): hence the year's minimum (trainer.LAGGED_MIN_DATES), so 2017 is
    # its own fit alone, as before.
    # `seeds` 4 (was 2): the expected RankIC of a k-seed ensemble (its mean over every k of 6 seeds,
    # benchmarks/weak_settings.py --seeds 0 1 2 3 4 5, single-threaded as the fits now run) rises 2 -> 4 in all four
    # selection cases (week 2017 0.0836 -> 0.0849, 2018 0.1108 -> 0.1124; day 2017 0.1027 -> 0.1037, 2018 0.1057 ->
    # 0.1071) and its worst draw more (week 2017 0.063 -> 0.079); 6 adds 0.0002-0.0005 for half again the training.
    # `instance_norm` ("week",): the week network also reads each image row z-scored over the stock's own 150 days
    # (datasets.preprocess.inputs), so it sees the shape of a stock's history apart from its level across stocks,
    # which the networks otherwise load on (per-date rank correlation of week / day with 20-day low turnover
    # 0.48-0.65, low volatility 0.52-0.56, 2017-2018; benchmarks/factor_loadings.py). Chosen on 2017-2018 (four
    # seeds each, single-threaded; benchmarks/weak_pairs.py, README "Instance-normalised `week` inputs"), 2019 not
    # looked at: the mean of week and day 2017 0.0937 -> 0.1028, 2018 0.1131 -> 0.1205, week alone 0.0789 -> 0.0802,
    # 0.1152 -> 0.1256; the same for `day` (its 30 days) lowered 2017 (their mean 0.0893), so day stays as it was.
    # `dataset_train_years` (("day", 1),): `day` (30 days of daily features) trains on the last year alone and, with
    # `lagged`, averages it with last year's fit, so a year's `day` is two one-year networks; `week` keeps 3 years.
    # Chosen on 2017-2018 (four seeds, each year's output as the run builds it: 2018 with last year's networks;
    # paired with the week of the fresh run at 7b7e508), 2019 not looked at: the mean of week and day 2017 0.1028 ->
    # 0.1074, 2018 0.1227 -> 0.1267; day 0.1047 -> 0.1113, 0.1058 -> 0.1095 (2 years: 2017 the same window, 2018
    # 0.1262). Both selection windows held the 2015 crash, which a shorter one drops: the gain may be smaller
    # on later years. `week` on 2 years lost in 2018 (0.1256 -> 0.1200), so it keeps 3.
    # `dataset_seeds` (("day", 8),): `day`'s one-year fits are short (~45 s single-threaded), so its ensemble takes
    # eight seeds (sixteen networks a date with last year's). Chosen on 2017-2018 (each year's day as the run builds
    # it, paired with the week of the fresh run at fd2cdf2), 2019 not looked at: the mean of week and day 2017
    # 0.1074 -> 0.1077, 2018 0.1267 -> 0.1281 (seeds 4-7 alone 0.1075, 0.1291: a four-seed draw moves as much as
    # the gain, which is why the robust choice is more seeds). `week` keeps 4: its fits are ~3x longer.
    "real": {"epochs": 6, "patience": 2, "date_stride": 1, "dates_per_epoch": 60, "valid_every": 10, "seeds": 4,
             "train_years": 3, "lagged": 1, "instance_norm": ("week",), "dataset_train_years": (("day", 1),),
             "dataset_seeds": (("day", 8),)},
}


# Training presets whose weak-factor fits run side by side in single-threaded processes on a CPU
# (models.side_by_side; with the kept batches the demo's weak-factor stage went 14.3 -> 7.6 min on 2 cores;
# the same numbers on any number of cores). The real-data preset joined once oneDNN's primitive cache was off
# (its weak-factor stage 6.9 -> 2.7 GiB): the copy a process gets of an all-A-share panel is the part its dataset
# reads (~0.1-0.2 GiB), a lagged ensemble trains member by member and predicts in date chunks side by side.
SIDE_BY_SIDE = frozenset({"tiny", "demo", "real"})


# Combiner settings (models.combiner.CombinerConfig fields) per training preset where they differ from its
# defaults. Real daily bars: the tree / mean / blend choice is validated across a weak-factor refit, not on
# folds of the window (chosen on 2018 with benchmarks/combiner_variants.py: the folds' tree scored 0.060
# out of sample against the mean's 0.114); the synthetic presets keep the folds their figures came from.
COMBINER: dict[str, dict] = {"real": {"validation": "walk_forward"}}


def training_for_market(source_identity: str | None) -> tuple[str, int]:
    """(training preset, seed) that go with the market a warehouse holds (its `_source` identity): what
    every entry point (CLI, schedule, UI launch, backfill) trains with unless the user sets them."""
    spec = json.loads(source_identity) if source_identity else None
    return training_preset_for(spec), int((spec or {}).get("seed", 0) or 0)


def training_preset_for(spec: dict | None) -> str:
    """Training preset that goes with a market: a synthetic preset's own; real files train as `real`
    (CPU-sized) unless `$FACTOR_PIPELINE_TRAINING` names another (`full` on a GPU)."""
    chosen = os.environ.get("FACTOR_PIPELINE_TRAINING")
    if chosen:
        return chosen
    if spec and spec.get("kind") == "synthetic":
        return str(spec["preset"])
    return "real"
