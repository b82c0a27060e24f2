"""Tokens per day as a small bar chart: the geometry, computed here, drawn as inline SVG.

Drawn on the server with no script and no outside asset, so the admin page works
offline. One bar per UTC day of the page's window, idle days included (height 0), so
the x axis is time. Each day's tooltip names its total and its heaviest users; the
template escapes those names like every other value.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Mapping

# In the SVG's own units (viewBox); the page scales it to its column.
WIDTH = 480
HEIGHT = 180
PLOT_TOP = 18  # room for the peak's label above the bars
PLOT_BOTTOM = 160  # the baseline; the first and last days are labelled below it
BAR_SHARE = 0.8  # of a day's slot; the rest is the gap between bars
MAX_BAR_WIDTH = 40  # so a window of a day or a week shows bars, not blocks
TOP_USERS = 3  # named in a day's tooltip


@dataclass(frozen=True)
class Bar:
    day: date
    tokens: int
    users: tuple[tuple[str, int], ...]  # the day's heaviest users, most tokens first
    left: float  # the day's column, the whole of it its tooltip's area
    slot: float
    width: float
    height: float

    @property
    def x(self) -> float:
        return round(self.left + (self.slot - self.width) / 2, 2)

    @property
    def y(self) -> float:
        return round(PLOT_BOTTOM - self.height, 2)

    @property
    def title(self) -> str:
        text = f"{self.day.isoformat()}: {self.tokens:,} tokens"
        if self.users:
            text += " (" + ", ".join(f"{name} {tokens:,}" for name, tokens in self.users) + ")"
        return text


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    peak: int  # the tallest bar's tokens

    width = WIDTH
    height = HEIGHT
    top = PLOT_TOP
    baseline = PLOT_BOTTOM

    @property
    def peak_text(self) -> str:
        return f"{self.peak:,}"

    @property
    def first(self) -> date:
        return self.bars[0].day

    @property
    def last(self) -> date:
        return self.bars[-1].day


def tokens_per_day(user_days: Iterable[Mapping], first: date, last: date) -> Chart:
    """The chart of rows with `day`, `username` and `total_tokens`, from `first` to `last`."""
    per_day: dict[date, dict[str, int]] = defaultdict(dict)
    for row in user_days:
        users = per_day[row["day"]]
        users[row["username"]] = users.get(row["username"], 0) + (row["total_tokens"] or 0)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    totals = {day: sum(per_day[day].values()) for day in days}
    peak = max(totals.values(), default=0)
    slot = WIDTH / len(days)
    width = round(min(slot * BAR_SHARE, MAX_BAR_WIDTH), 2)
    bars = []
    for n, day in enumerate(days):
        ranked = sorted(per_day[day].items(), key=lambda item: (-item[1], item[0]))
        users = tuple(item for item in ranked[:TOP_USERS] if item[1] > 0)
        height = round(totals[day] / peak * (PLOT_BOTTOM - PLOT_TOP), 2) if peak else 0.0
        bars.append(Bar(day, totals[day], users, left=round(n * slot, 2), slot=round(slot, 2),
                        width=width, height=height))
    return Chart(bars, peak)
