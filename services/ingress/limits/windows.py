"""Where rate windows and budget periods begin and end.

Rate windows (rpm, tpm) are anchored: a window starts at the first request it counts and
lasts `window_s`; the next one starts at the first request after it ended. So a burst
never straddles a boundary: every request of a window is counted in that one window.

Budget periods are the UTC calendar: `1h` from the top of the hour, `1d` from midnight,
`7d` from Monday midnight, `30d` in 30-day blocks counted from Monday 1970-01-05, `1mo`
from the first of the month (as shared/tenancy.py `budget_period`, which the admin API's
spend shows); no duration is one period that never ends. Every replica computes the
same period from its clock, so no state is needed to agree on it.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from shared.tenancy import BudgetDuration

FOREVER = math.inf
_DAY = 86_400
_EPOCH_MONDAY = 4 * _DAY  # 1970-01-05, a Monday


def rate_window_open(start: float, window_s: float, now: float) -> bool:
    """Whether the window that began at `start` still counts a request made at `now`. A
    start up to a window ahead of `now` is the current window too: another replica's clock
    runs ahead, or its write landed between this replica reading the clock and reading the
    entry. Taking it for over would start a new count and forget what it had granted."""
    return start - window_s < now < start + window_s


def _month_after(moment: datetime) -> datetime:
    return moment.replace(year=moment.year + 1, month=1) if moment.month == 12 else moment.replace(
        month=moment.month + 1)


def budget_period(duration: BudgetDuration | None, now: float) -> tuple[float, float]:
    """The budget period holding `now`: its start and end (unix seconds)."""
    if duration is None:
        return 0.0, FOREVER
    moment = datetime.fromtimestamp(now, UTC)
    if duration == "1h":
        start = moment.replace(minute=0, second=0, microsecond=0)
        return start.timestamp(), (start + timedelta(hours=1)).timestamp()
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if duration == "1d":
        return day.timestamp(), (day + timedelta(days=1)).timestamp()
    if duration == "7d":
        start = day - timedelta(days=day.weekday())
        return start.timestamp(), (start + timedelta(days=7)).timestamp()
    if duration == "30d":
        block = 30 * _DAY
        first = _EPOCH_MONDAY + math.floor((now - _EPOCH_MONDAY) / block) * block
        return float(first), float(first + block)
    start = day.replace(day=1)
    return start.timestamp(), _month_after(start).timestamp()


def reset_text(seconds: float) -> str:
    """A duration as OpenAI writes x-ratelimit-reset-*: `20ms`, `1.5s`, `6m0s`, `2h3m4s`."""
    if seconds == FOREVER:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
