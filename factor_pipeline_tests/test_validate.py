"""Every class of bad input is refused with the table, column and offending rows, and nothing is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from factor_pipeline.cli import main
from factor_pipeline.market.io import duckdb_reader, table_files
from factor_pipeline.market.validate import ContractError, validate
from factor_pipeline_tests.conftest import REALDATA


@pytest.fixture(scope="module")
def small_dir(tiny, tmp_path_factory) -> Path:
    """The tiny market's first 15 trading days: small enough to copy and break in every test."""
    out = tmp_path_factory.mktemp("small")
    last = sorted(tiny["daily_bars"]["date"].unique())[14]
    for name, df in tiny.items():
        if "date" in df.columns:
            df = df.filter(pl.col("date") <= last)
        df.write_parquet(out / f"{name}.parquet")
    return out


def _broken(small_dir: Path, tmp_path: Path, table: str, fn) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(small_dir, folder)
    df = pl.read_parquet(folder / f"{table}.parquet")
    out = fn(df)
    if out is None:
        (folder / f"{table}.parquet").unlink()
    else:
        out.write_parquet(folder / f"{table}.parquet")
    return folder


def _set(col: str, value, row: int = 3):
    """Replace one cell (row `row`) of a column."""
    def fn(df: pl.DataFrame) -> pl.DataFrame:
        s = df[col].to_list()
        s[row] = value
        return df.with_columns(pl.Series(col, s, dtype=pl.Float64 if isinstance(value, float) else None))
    return fn


CASES = {
    "missing column": ("daily_bars", lambda d: d.drop("vwap"), "daily_bars.vwap: missing column"),
    "unknown column": ("daily_bars", lambda d: d.with_columns(foo=1.0), "daily_bars.foo: unknown column"),
    "wrong dtype": ("daily_bars", lambda d: d.with_columns(pl.col("close").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("abc")).otherwise(pl.col("close")).alias("close")),
        "daily_bars.close: wrong dtype"),
    "nan": ("daily_bars", _set("close", float("nan")), "daily_bars.close: NaN or inf"),
    "inf": ("daily_bars", _set("amount", float("inf")), "daily_bars.amount: NaN or inf"),
    "null": ("stocks", lambda d: d.with_columns(industry=pl.when(pl.int_range(pl.len()) == 3)
                                                .then(None).otherwise(pl.col("industry"))),
             "stocks.industry: null value"),
    "non-positive price": ("index_daily", _set("close", -5.0), "index_daily.close: non-positive price"),
    "high < low": ("daily_bars", lambda d: d.with_columns(
        high=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("low") - 1).otherwise(pl.col("high"))),
        "daily_bars.high: high < low"),
    "open outside": ("intraday_bars", lambda d: d.with_columns(
        open=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("high") + 1).otherwise(pl.col("open"))),
        "intraday_bars.open: open outside [low, high]"),
    "close outside": ("daily_bars", lambda d: d.with_columns(
        close=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("low") - 0.5).otherwise(pl.col("close"))),
        "daily_bars.close: close outside [low, high]"),
    "vwap outside": ("daily_bars", lambda d: d.with_columns(
        vwap=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("high") * 2).otherwise(pl.col("vwap"))),
        "daily_bars.vwap: vwap outside [low, high] by more than 0.005 and outside the day's limit band"),
    "duplicate key": ("daily_bars", lambda d: pl.concat([d, d.slice(3, 1)]), "daily_bars.code,date: duplicate key"),
    "intraday does not add up": ("intraday_bars", lambda d: d.with_columns(
        volume=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("volume") + 100).otherwise(pl.col("volume"))),
        "intraday_bars.volume: intraday bars do not add up to the daily bar"),
    "weights do not sum to 1": ("index_weights", lambda d: d.with_columns(
        weight=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("weight") * 1.5).otherwise(pl.col("weight"))),
        "index_weights.weight: weights do not sum to 1"),
    "code not in stocks": ("index_weights", lambda d: d.with_columns(
        code=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("999999.SH")).otherwise(pl.col("code"))),
        "index_weights.code: code not in stocks"),
    "missing table": ("index_daily", lambda d: None, "index_daily.*: table missing"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_and_nothing_written(case, small_dir, tmp_path, monkeypatch, capsys):
    table, fn, message = CASES[case]
    folder = _broken(small_dir, tmp_path, table, fn)
    home = tmp_path / "home"
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(home))
    assert main(["import", str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err
    if table in ("daily_bars", "intraday_bars", "index_weights") and case not in ("missing column", "unknown column"):
        bad = pl.read_parquet(folder / f"{table}.parquet").slice(3, 1)
        ident = bad["date"][0] if case == "weights do not sum to 1" else bad["code"][0]  # (index, date) rows
        assert str(ident) in err, "the offending row is named"
    assert not (home / "warehouse.duckdb").exists()


def test_valid_market_passes_as_parquet_and_csv(small_dir, tmp_path):
    rep = validate(duckdb.connect(), {k: duckdb_reader(v) for k, v in table_files(small_dir).items()})
    assert rep.violations == []
    csv = tmp_path / "csv"
    csv.mkdir()
    for p in small_dir.glob("*.parquet"):
        pl.read_parquet(p).write_csv(csv / f"{p.stem}.csv")
    rep = validate(duckdb.connect(), {k: duckdb_reader(v) for k, v in table_files(csv).items()})
    assert rep.violations == [], [str(v) for v in rep.violations]
    assert rep.rows["intraday_bars"] == pl.read_parquet(small_dir / "intraday_bars.parquet").height


@pytest.mark.skipif(not (REALDATA / "daily_bars.parquet").exists(), reason="shared/realdata not present")
def test_real_market_passes_the_contract():
    rep = validate(duckdb.connect(), {k: duckdb_reader(v) for k, v in table_files(REALDATA).items()})
    assert rep.violations == [], [str(v) for v in rep.violations]
    assert "intraday_bars" not in rep.rows and rep.rows["daily_bars"] > 3_000_000


def test_oddity_counts_match_an_independent_count(tiny_dir):
    from factor_pipeline.market.oddities import count_oddities
    from factor_pipeline_tests.test_realdata import _expected_oddities

    counts = count_oddities(duckdb.connect(), {k: duckdb_reader(v) for k, v in table_files(tiny_dir).items()})
    assert counts == _expected_oddities(tiny_dir)
    assert counts["suspended_rows"] > 0 and counts["null_limits"] > 0


def _stray_bar(d: pl.DataFrame) -> pl.DataFrame:
    """One bar dated 1900-01-01, a date on which no other stock trades."""
    from datetime import date

    return pl.concat([d, d.slice(3, 1).with_columns(date=pl.lit(date(1900, 1, 1)))])


def _zero_float_on_trading_day(d: pl.DataFrame) -> pl.DataFrame:
    row = d.with_row_index("_i").filter(~pl.col("is_suspended"))["_i"][0]
    return d.with_columns(float_shares=pl.when(pl.int_range(pl.len()) == row).then(0.0)
                          .otherwise(pl.col("float_shares")))


# (table, break, message, the row's code and date as the message must show them)
DATA_CASES = {
    "adj_factor zero": (_set("adj_factor", 0.0), "daily_bars.adj_factor: non-positive adj_factor"),
    "adj_factor negative": (_set("adj_factor", -1.5), "daily_bars.adj_factor: non-positive adj_factor"),
    "float_shares negative": (_set("float_shares", -1000.0), "daily_bars.float_shares: negative float_shares"),
    "float_shares zero on a trading day": (_zero_float_on_trading_day,
                                           "daily_bars.float_shares: zero float_shares on a trading day"),
    "stray date": (_stray_bar, "daily_bars.date: date with bars of fewer than 10% of the median date's stocks"),
    "nan close says NaN only": (_set("close", float("nan")), "daily_bars.close: NaN or inf"),
    "vwap beyond the limit band": (lambda d: d.with_columns(vwap=pl.when(pl.int_range(pl.len()) == 3)
                                                            .then(pl.col("limit_up") * 1.01).otherwise(pl.col("vwap"))),
                                   "daily_bars.vwap: vwap outside [low, high] by more than 0.005 and outside"),
}


def _daily_only(folder: Path) -> Path:
    for name in ("intraday_bars", "l2_daily"):
        for p in folder.glob(f"{name}*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return folder


@pytest.mark.parametrize("market", ["full", "daily_only"])
@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_bar_values_are_refused_and_the_warehouse_untouched(case, market, small_dir, tmp_path, monkeypatch,
                                                                   capsys):
    """A loaded warehouse stays byte for byte as it was when a broken folder is imported over it."""
    fn, message = DATA_CASES[case]
    home = tmp_path / "home"
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(home))
    good = tmp_path / "good"
    shutil.copytree(small_dir, good)
    if market == "daily_only":
        _daily_only(good)
    assert main(["import", str(good)]) == 0
    before = (home / "warehouse.duckdb").read_bytes()
    folder = _broken(good, tmp_path, "daily_bars", fn)
    capsys.readouterr()
    assert main(["import", str(folder), "--replace"]) == 2
    err = capsys.readouterr().err
    assert message in err
    bad = pl.concat([pl.read_parquet(folder / "daily_bars.parquet"), pl.read_parquet(good / "daily_bars.parquet")]
                    ).filter(pl.len().over("code", "date") == 1)  # the changed row, as broken and as it was
    if case == "float_shares zero on a trading day":
        bad = pl.read_parquet(folder / "daily_bars.parquet").filter((pl.col("float_shares") == 0)
                                                                   & ~pl.col("is_suspended"))
    elif case != "stray date":
        bad = pl.read_parquet(folder / "daily_bars.parquet").slice(3, 1)
    line = next(x for x in err.splitlines() if message in x)
    assert f"code={bad['code'][0]}" in line and f"date={bad['date'][0]}" in line, line
    if case == "nan close says NaN only":
        assert "outside [low, high]" not in err
    assert (home / "warehouse.duckdb").read_bytes() == before


def _as_bse(folder: Path, bse: list[str], nth: int) -> tuple[str, object, float]:
    """Put `bse` on board bse with +-30% limits (never inside the day's range) and give the nth of their
    trading rows with room below the limit a vwap 4% above its high. Returns that row's code, date, high."""
    stocks = pl.read_parquet(folder / "stocks.parquet")
    stocks.with_columns(board=pl.when(pl.col("code").is_in(bse)).then(pl.lit("bse")).otherwise(pl.col("board"))
                        ).write_parquet(folder / "stocks.parquet")
    bars = pl.read_parquet(folder / "daily_bars.parquet").sort("code", "date")
    prev = pl.col("close").shift(1).over("code")
    wide = pl.col("code").is_in(bse) & prev.is_not_null() & pl.col("limit_up").is_not_null()
    bars = bars.with_columns(limit_up=pl.when(wide).then(pl.max_horizontal((prev * 1.3).round(2), "high"))
                             .otherwise("limit_up"),
                             limit_down=pl.when(wide).then(pl.min_horizontal((prev * 0.7).round(2), "low"))
                             .otherwise("limit_down"))
    room = wide & ~pl.col("is_suspended") & (pl.col("high") * 1.05 < pl.col("limit_up"))
    row = bars.with_row_index("_i").filter(room).slice(nth, 1)
    i, high = int(row["_i"][0]), float(row["high"][0])
    bars.with_columns(vwap=pl.when(pl.int_range(pl.len()) == i).then(high * 1.04).otherwise("vwap")
                      ).write_parquet(folder / "daily_bars.parquet")
    return row["code"][0], row["date"][0], high


def test_beijing_stocks_and_an_off_range_vwap_import_as_oddities(small_dir, tmp_path, monkeypatch, capsys):
    """Board `bse` (+-30% limits) is accepted; a vwap outside [low, high] but inside the limit band is
    counted as an oddity and read clipped to [low, high] by the panel (labels, images, execution)."""
    from factor_pipeline.datasets.panel import build_panel
    from factor_pipeline.market.oddities import count_oddities
    from factor_pipeline.market.warehouse import Warehouse

    folder = tmp_path / "bse"
    shutil.copytree(small_dir, folder)
    code, day, high = _as_bse(folder, pl.read_parquet(folder / "stocks.parquet")["code"].head(3).to_list(), 0)
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(tmp_path / "home"))
    assert main(["import", str(folder)]) == 0, capsys.readouterr().err
    assert "vwap_outside_range" in capsys.readouterr().out
    rels = {k: duckdb_reader(v) for k, v in table_files(folder).items()}
    assert count_oddities(duckdb.connect(), rels)["vwap_outside_range"] == 1
    wh = Warehouse()
    with wh.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM stocks WHERE board = 'bse'").fetchall() == [(3,)]
    with wh.connect(read_only=True) as con:
        panel = build_panel(con, {t: t for t in ("daily_bars", "index_weights")})
    t, k = panel.date_index(day), int(np.searchsorted(panel.codes, code))
    assert panel.field("vwap")[k, t] == pytest.approx(high, rel=1e-6)  # clipped to the day's high


@pytest.mark.slow
def test_a_market_with_beijing_stocks_runs_through_datasets_and_portfolios(tiny_dir, tmp_path, monkeypatch, capfd):
    """Five stocks on board `bse` (+-30% limits) and one off-range vwap: `run --data` imports, builds the
    datasets, scores and the enhanced portfolios, and the bse stocks are samples like any other."""
    from factor_pipeline.market.warehouse import Warehouse

    folder = tmp_path / "bse_market"
    shutil.copytree(tiny_dir, folder)
    _as_bse(folder, pl.read_parquet(folder / "stocks.parquet")["code"].tail(5).to_list(), 10)
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACTOR_PIPELINE_TRAINING", "tiny")
    assert main(["run", "--data", str(folder), "--start", "2017-01-01", "--end", "2018-06-29", "--name", "bse"]) == 0
    assert "vwap_outside_range" in capfd.readouterr().out  # printed by the market stage's process
    with Warehouse().connect(read_only=True) as con:
        samples = con.execute("SELECT count(*) FROM samples WHERE code IN "
                              "(SELECT code FROM stocks WHERE board = 'bse')").fetchall()[0][0]
    with Warehouse().connect(read_only=True) as con:
        weights = con.execute('SELECT count(DISTINCT "index") FROM weights').fetchall()[0][0]
    assert samples > 0 and weights >= 1
    doc = json.loads((tmp_path / "home" / "reports" / "bse" / "metrics.json").read_text())
    assert doc["run"]["oddities"]["vwap_outside_range"] == 1
    assert doc["portfolios"]


def test_run_refuses_bad_input_from_its_market_process(small_dir, tmp_path, monkeypatch, capsys):
    """`run` checks the files in its first stage's own process: the contract error crosses back whole
    (table, column, rule, the offending row) and nothing is written."""
    import pickle

    table, fn, message = CASES["code not in stocks"]
    folder = _broken(small_dir, tmp_path, table, fn)
    home = tmp_path / "home"
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(home))
    with pytest.raises(ContractError) as caught:
        validate(duckdb.connect(), {k: duckdb_reader(v) for k, v in table_files(folder).items()}).raise_if_failed()
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and again.violations == caught.value.violations
    assert main(["run", "--data", str(folder), "--start", "2017-01-01", "--end", "2017-12-31"]) == 2
    err = capsys.readouterr().err
    assert message in err and "999999.SH" in err
    assert not (home / "warehouse.duckdb").exists()
