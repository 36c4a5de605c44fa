"""The synthetic market's trading calendar: weekdays less A-share-like holiday blocks."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

# Lunar new year's day; the exchange closes for a block around it.
_SPRING_FESTIVAL = {
    2005: date(2005, 2, 9), 2006: date(2006, 1, 29), 2007: date(2007, 2, 18), 2008: date(2008, 2, 7),
    2009: date(2009, 1, 26), 2010: date(2010, 2, 14), 2011: date(2011, 2, 3), 2012: date(2012, 1, 23),
    2013: date(2013, 2, 10), 2014: date(2014, 1, 31), 2015: date(2015, 2, 19), 2016: date(2016, 2, 8),
    2017: date(2017, 1, 28), 2018: date(2018, 2, 16), 2019: date(2019, 2, 5), 2020: date(2020, 1, 25),
    2021: date(2021, 2, 12), 2022: date(2022, 2, 1), 2023: date(2023, 1, 22), 2024: date(2024, 2, 10),
    2025: date(2025, 1, 29), 2026: date(2026, 2, 17),
}


def _holidays(year: int) -> set[date]:
    days: set[date] = {date(year, 1, 1), date(year, 4, 4)}
    days |= {date(year, 5, d) for d in (1, 2, 3)}
    days |= {date(year, 10, d) for d in range(1, 8)}
    sf = _SPRING_FESTIVAL.get(year, date(year, 2, 1))
    days |= {sf + timedelta(days=k) for k in range(-1, 6)}
    return days


def trading_calendar(start: date, end: date) -> np.ndarray:
    """Trading dates in [start, end] as `datetime64[D]`, ascending."""
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    hol = set().union(*(_holidays(y) for y in range(start.year, end.year + 1)))
    hol_arr = np.array(sorted(hol), dtype="datetime64[D]")
    keep = (weekday < 5) & ~np.isin(days, hol_arr)
    return days[keep]
