"""Progress of long work: the run-log lines come at the promised rate and say done / total."""

from __future__ import annotations

from factor_pipeline.progress import Progress


def test_log_lines_come_every_five_percent_and_at_the_end():
    lines: list[str] = []
    p = Progress("portfolio solves", "solve", log=lines.append, log_every=0.05)
    p.start(30)
    p.start(10)  # more work found later: the total grows
    for k in range(40):
        p.step(1, f"week {k}")
    p.close()
    assert len(lines) == 20  # every 2 of 40
    assert lines[0].startswith("portfolio solves: 2/40 solves (5%)") and lines[0].endswith("; week 1")
    assert "40/40 solves (100%)" in lines[-1] and "left" not in lines[-1]
    assert "left" in lines[0]


def test_every_step_is_logged_with_log_every_zero():
    lines: list[str] = []
    p = Progress("weak_factors_day fits", "fit", log=lines.append, log_every=0)
    p.start(3)
    for what in ("2018 seed 0 trained", "2018 seed 1 reused from the cache", "2019 seed 0 trained"):
        p.step(1, what)
    assert [line.split(": ", 1)[1].split(" (")[0] for line in lines] == ["1/3 fits", "2/3 fits", "3/3 fits"]
    assert lines[1].endswith("2018 seed 1 reused from the cache")
