"""RankIC: the Spearman correlation of a score with the realised label across stocks on one date."""

from __future__ import annotations

import numpy as np


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), 0-based."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return (sums / counts)[inv]


def rank_ic(score: np.ndarray, label: np.ndarray) -> float:
    """Spearman correlation over the stocks where both are finite; NaN with fewer than 3."""
    ok = np.isfinite(score) & np.isfinite(label)
    if ok.sum() < 3:
        return float("nan")
    a, b = _ranks(score[ok]), _ranks(label[ok])
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def top_group_turnover(days: list[tuple[np.ndarray, np.ndarray]], groups: int = 20) -> float:
    """Mean weekly one-way turnover of the top group (the best 1/groups of stocks by score).

    `days`: (codes, scores) per consecutive signal date. Turnover between two dates is the share of
    the later top group that was not in the earlier one."""
    tops = []
    for codes, score in days:
        ok = np.isfinite(score)
        k = max(1, int(ok.sum()) // groups)
        order = np.argsort(-score[ok], kind="stable")[:k]
        tops.append(set(codes[ok][order]))
    changes = [len(b - a) / len(b) for a, b in zip(tops[:-1], tops[1:], strict=True) if b]
    return float(np.mean(changes)) if changes else float("nan")


def ic_summary(ics: list[float]) -> dict[str, float]:
    """RankIC mean, ICIR (mean / population sd) and the share of dates with RankIC > 0."""
    v = np.array([x for x in ics if np.isfinite(x)])
    if len(v) == 0:
        return {"rank_ic_mean": float("nan"), "icir": float("nan"), "ic_positive_share": float("nan")}
    sd = v.std()
    icir = round(float(v.mean() / sd), 3) if sd > 0 else float("nan")
    positive = round(float((v > 0).mean()), 3)
    return {"rank_ic_mean": round(float(v.mean()), 4), "icir": icir, "ic_positive_share": positive}
