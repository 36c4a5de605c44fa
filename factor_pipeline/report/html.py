"""report.html: the report's tables and figures for one run, readable offline (plots inlined as PNG)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import polars as pl

from factor_pipeline.models.baselines import EXTRA_MODELS
from factor_pipeline.models.combiner import MODELS as _COMBINED
from factor_pipeline.report.metrics import DATASET_NAMES

MODELS = (*_COMBINED, *EXTRA_MODELS)

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ok{color:#070}.fail{color:#b00}
.note{color:#555;font-size:.92em}img{max-width:100%}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2%}" if pct else f"{v:.3f}"
    return html.escape(str(v))


def describe_source(spec) -> str:
    """The market a run read, in words: "synthetic market v3 (preset demo, seed 0)", "files at /path"."""
    if not isinstance(spec, dict) or not spec:
        return _fmt(spec or None)
    if spec.get("kind") == "synthetic":
        return html.escape(f"synthetic market v{spec.get('version')} (preset {spec.get('preset')}, "
                           f"seed {spec.get('seed')})")
    if spec.get("kind") == "files":
        return html.escape(f"files at {spec.get('path')}")
    return html.escape(", ".join(f"{k} {v}" for k, v in spec.items()))


def _table(head: list[str], rows: list[list], pct_cols: set[int] = frozenset()) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v, i in pct_cols)}</td>" for i, v in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _sections(m: dict) -> dict[str, dict]:
    return {**m["datasets"], **m["models"], **m["baselines"]}


def _summary_rows(names: list[str], per: dict, uni: str) -> list[list]:
    rows = []
    for n in names:
        s = per.get(n, {}).get(uni)
        if s:
            rows.append([n, s["rank_ic_mean"], s["icir"], s["ic_positive_share"], s["top_excess_ann"],
                         s.get("top_vol_ann"), s.get("top_max_drawdown"), s["top_turnover_weekly"]])
    return rows


def _group_bars(groups: pl.DataFrame, names: list[str], uni: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in names if groups.filter((pl.col("name") == n) & (pl.col("universe") == uni)).height]
    if not names:
        return ""
    cols = min(3, len(names))
    fig, axes = plt.subplots((len(names) + cols - 1) // cols, cols, figsize=(4 * cols, 2.6 * ((len(names) + cols - 1)
                                                                                          // cols)), squeeze=False)
    for ax, n in zip(axes.flat, names, strict=False):
        g = (groups.filter((pl.col("name") == n) & (pl.col("universe") == uni)).group_by("group")
             .agg(pl.col("excess").mean() * 52).sort("group"))
        ax.bar(g["group"].to_numpy(), g["excess"].to_numpy(), color="#4a7ab5")
        ax.set_title(n, fontsize=9)
        ax.axhline(0, color="k", lw=0.5)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{uni}: mean weekly excess return x 52 by group (1 = lowest score)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _png(fig)


def _cum_ic(ic: pl.DataFrame, names: list[str], uni: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.4))
    for n in names:
        s = ic.filter((pl.col("name") == n) & (pl.col("universe") == uni)).sort("date")
        if s.height:
            ax.plot(s["date"].to_numpy(), s["rank_ic"].cum_sum().to_numpy(), label=n, lw=1.2)
    ax.set_title(f"cumulative 10-day RankIC ({uni})", fontsize=10)
    ax.legend(fontsize=8, ncol=4)
    ax.tick_params(labelsize=8)
    return _png(fig)


def _nav_plots(nav: pl.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    indices = sorted(nav["index"].unique().to_list())
    fig, axes = plt.subplots(2, len(indices), figsize=(4.2 * len(indices), 6), squeeze=False)
    for j, index in enumerate(indices):
        sub = nav.filter(pl.col("index") == index)
        for (model,), g in sorted(sub.group_by("model"), key=lambda kv: kv[0][0]):
            g = g.sort("date")
            axes[0, j].plot(g["date"].to_numpy(), g["nav"].to_numpy(), lw=1, label=model)
            axes[1, j].plot(g["date"].to_numpy(), (g["nav"] / g["bench"]).to_numpy(), lw=1, label=model)
        g = sub.filter(pl.col("model") == sub["model"][0]).sort("date")
        axes[0, j].plot(g["date"].to_numpy(), g["bench"].to_numpy(), "k--", lw=1, label=index)
        axes[0, j].set_title(f"{index}: NAV", fontsize=9)
        axes[1, j].set_title(f"{index}: excess NAV (NAV / index)", fontsize=9)
        for ax in axes[:, j]:
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7)
    return _png(fig)


def _portfolio_tables(p: dict) -> str:
    head = ["index", "model", "excess/yr", "excess vol", "weekly win", "excess max DD", "realised TE",
            "turnover/wk", "max violation", "weeks relaxed", "solve s (median)"]
    rows = [[index, model, f["excess_ann"], f["excess_vol_ann"], f["weekly_win_rate"], f["max_drawdown"],
             f["realised_te"], f.get("turnover_weekly"), f["max_constraint_violation"], f.get("weeks_relaxed"),
             f.get("solve_seconds_median")] for index, per in p.items() for model, f in sorted(per.items())]
    html_ = _table(head, rows, {2, 3, 4, 5, 6, 7})
    years = sorted({y for per in p.values() for f in per.values() for y in f["excess_by_year"]})
    rows = [[index, model, *[f["excess_by_year"].get(y) for y in years]]
            for index, per in p.items() for model, f in sorted(per.items())]
    return html_ + "<h3>excess return by year</h3>" + _table(["index", "model", *years], rows,
                                                                 set(range(2, 2 + len(years))))


def render_report(m: dict, ic: pl.DataFrame | None, groups: pl.DataFrame | None, out: Path,
                  nav: pl.DataFrame | None = None) -> Path:
    """Write report.html from a metrics.json document and the per-date RankIC and group tables."""
    per = _sections(m)
    run = m["run"]
    parts = [f"<html><head><meta charset='utf-8'><title>factor_pipeline report</title><style>{CSS}</style>"
             "</head><body>", "<h1>factor_pipeline: weak factors, Model1–Model4 and baselines</h1>",
             f"<p class='note'>data: {describe_source(run['data'])}"
             f" · signal dates {run['start']} … {run['end']} · git {_fmt(run['git'])}. Every figure is out of "
             "sample: each model was fitted on labels realised before the year it scores.</p>"]
    universe = run.get("universe") or "csi_all"
    if universe != "csi_all":
        parts.append(f"<p class='note'>Sample universe {html.escape(universe)}: every score covers its members only, "
                     "so the csi_all figures below are over them, and an index outside it is not evaluated.</p>")
    if run.get("oddities"):
        from factor_pipeline.market.oddities import HANDLING

        parts.append("<details><summary>Oddities of the data (legal, counted, handled)</summary>" + _table(
            ["oddity", "count", "handling"], [[k, f"{v:,}", HANDLING.get(k, "")] for k, v in run["oddities"].items()],
            set()) + "</details>")
    head = ["score", "RankIC", "ICIR", "IC>0", "top excess/yr", "top vol/yr", "top max DD", "top turnover/wk"]
    pct = {3, 4, 5, 6, 7}
    parts.append("<h2>Table 1 — weak factors per dataset (csi_all, 20 groups)</h2>")
    parts.append(_table(head, _summary_rows(list(DATASET_NAMES), per, "csi_all"), pct))
    parts.append("<h2>Table 2 — Model1–Model4 and baselines by universe</h2>")
    for uni in ("csi_all", "csi300", "csi500", "csi1000"):
        rows = _summary_rows([*MODELS, *m["baselines"]], per, uni)
        if rows:
            parts.append(f"<h3>{uni} ({'20' if uni == 'csi_all' else '5'} groups)</h3>" + _table(head, rows, pct))
    oracle = m.get("oracle_rank_ic_mean") or {}
    if oracle:
        parts.append("<p>Ceiling — the simulator's oracle (the planted expected return) RankIC: " + ", ".join(
            f"{u} {_fmt(v)}" for u, v in oracle.items()) + "</p>")
    parts.append("<h2>Table 3 — top group per year (csi_all): absolute / excess return</h2>")
    years = sorted({y for n in per for y in (per[n].get("csi_all", {}).get("top_by_year") or {})})
    rows = []
    for n in [*DATASET_NAMES, *MODELS, *m["baselines"]]:
        by = per.get(n, {}).get("csi_all", {}).get("top_by_year") or {}
        if by:
            rows.append([n, *[f"{by[y]['absolute']:.1%} / {by[y]['excess']:.1%}" if y in by else "–" for y in years]])
    parts.append(_table(["score", *years], rows))
    parts.append("<h2>Table 4 — group excess return per year (csi_all), top group first</h2>")
    rows = [[n, *(per[n]["csi_all"]["group_excess_ann"][:5] + per[n]["csi_all"]["group_excess_ann"][-2:])]
            for n in [*DATASET_NAMES, *MODELS, *m["baselines"]] if per.get(n, {}).get("csi_all")]
    parts.append(_table(["score", "g20 (top)", "g19", "g18", "g17", "g16", "g2", "g1 (bottom)"], rows,
                        set(range(1, 8))))
    corr = m.get("correlations") or {}
    names = [n for n in DATASET_NAMES if n in corr]
    if names:
        parts.append("<h2>Table 5 — correlation between the datasets' outputs (mean cross-sectional Pearson)</h2>")
        parts.append(_table(["", *names], [[a, *[corr[a].get(b) for b in names]] for a in names]))
    exp = m.get("exposures") or {}
    if exp:
        factors = sorted({f for e in exp.values() for f in e})
        parts.append("<h2>Table 6 — correlation with common factors (csi_all; size = size bias)</h2>")
        parts.append(_table(["score", *factors], [[n, *[exp[n].get(f) for f in factors]] for n in exp]))
    parts.append("<h2>Table 7 — the report's orderings on this data</h2><p class='note'>csi_all RankIC over the "
                 "signal dates every dataset and model has</p><ul>")
    for k, v in (m.get("orderings") or {}).items():
        state = {True: "<span class='ok'>holds</span>", False: "<span class='fail'>fails</span>",
                 None: "cannot be said (missing scores)"}[v["holds"]]
        vals = ", ".join(_fmt(x) for x in v.get("values", []))
        parts.append(f"<li>{html.escape(k)}: {state} <span class='note'>({vals})</span></li>")
    parts.append("</ul>")
    if groups is not None and groups.height:
        parts.append("<h2>Figures 7–8 — group excess returns</h2>")
        parts.append(_group_bars(groups, list(DATASET_NAMES), "csi_all"))
        parts.append(_group_bars(groups, [*MODELS, *m["baselines"]], "csi_all"))
    if ic is not None and ic.height:
        parts.append("<h2>Figures 9–10 — cumulative RankIC</h2>")
        parts.append(_cum_ic(ic, list(DATASET_NAMES), "csi_all"))
        parts.append(_cum_ic(ic, [*MODELS, *m["baselines"], "oracle"], "csi_all"))
    if m.get("portfolios"):
        parts.append("<h2>Index enhancement — weekly, next-day VWAP, buy 0.1% / sell 0.2%</h2>")
        parts.append("<p class='note'>Constraints: |style| ≤ 0.5, |industry| ≤ 2%, TE ≤ 4% (csi300) / 5%, "
                     "members ≥ 80%, one-way turnover ≤ 20%/week, name cap 5% (or the index weight); "
                     "relaxations are counted per portfolio.</p>")
        parts.append(_portfolio_tables(m["portfolios"]))
        if nav is not None and nav.height:
            parts.append(_nav_plots(nav))
    if m.get("not_runnable"):
        parts.append("<h2>Models not runnable on this data</h2><ul>" + "".join(
            f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in m["not_runnable"].items()) + "</ul>")
    if m.get("not_built"):
        parts.append("<h2>Not in this report</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in m["not_built"])
                     + "</ul>")
    parts.append("</body></html>")
    path = out / "report.html"
    tmp = out / "report.html.tmp"
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path
