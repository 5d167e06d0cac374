from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingress.limits.allowance import rate_period
from services.ingress.limits.windows import FOREVER, budget_period, rate_window_open, reset_text
from shared.tenancy import budget_period as tenancy_period


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("duration", "now", "start", "end"), [
    ("1h", "2026-12-01T23:59:59", "2026-12-01T23:00:00", "2026-12-02T00:00:00"),
    ("1d", "2026-12-01T13:05:00", "2026-12-01T00:00:00", "2026-12-02T00:00:00"),
    ("7d", "2026-12-03T10:00:00", "2026-11-30T00:00:00", "2026-12-07T00:00:00"),  # a Thursday: Monday's week
    ("1mo", "2026-12-31T23:00:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ("1mo", "2026-02-10T00:00:00", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
])
def test_budget_periods_follow_the_utc_calendar(duration: str, now: str, start: str, end: str) -> None:
    assert budget_period(duration, _at(now)) == (_at(start), _at(end))  # type: ignore[arg-type]


def test_thirty_day_blocks_and_the_budget_that_never_resets() -> None:
    start, end = budget_period("30d", _at("2026-12-01T12:00:00"))
    assert end - start == 30 * 86400 and start <= _at("2026-12-01T12:00:00") < end
    assert (start - _at("1970-01-05T00:00:00")) % (30 * 86400) == 0
    assert budget_period(None, _at("2026-12-01T12:00:00")) == (0.0, FOREVER)


def test_an_anchored_window_counts_from_its_start_only() -> None:
    assert rate_window_open(100.0, 60.0, 100.0) and rate_window_open(100.0, 60.0, 159.9)
    assert not rate_window_open(100.0, 60.0, 160.0) and not rate_window_open(100.0, 60.0, 40.0)


def test_a_window_that_begins_a_moment_ahead_is_the_current_one() -> None:
    """A replica whose clock reads 99.5 when it reads an entry another replica started at 100
    (clock skew, or that write landing between its clock and its read) counts in that
    window: starting a new one would overwrite the entry and forget every unit granted."""
    assert rate_window_open(100.0, 60.0, 99.5)
    assert rate_period(60.0)(99.5, 100.0) == (100.0, 160.0)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0204, "21ms"), (1.5, "1.5s"), (59.0, "59s"), (360.0, "6m0s"), (7384.2, "2h3m5s"), (FOREVER, "never"),
])
def test_reset_is_written_as_openai_writes_it(seconds: float, text: str) -> None:
    assert reset_text(seconds) == text


@pytest.mark.parametrize("duration", ["1h", "1d", "7d", "30d", "1mo"])
@pytest.mark.parametrize("now", ["2026-12-01T23:59:59", "2027-01-01T00:00:00", "2026-02-28T12:30:00",
                                 "1999-07-04T06:00:00"])
def test_periods_are_the_ones_the_admin_api_shows_spend_for(duration: str, now: str) -> None:
    moment = _at(now)
    start, end = budget_period(duration, moment)  # type: ignore[arg-type]
    assert start == tenancy_period(duration, datetime.fromtimestamp(moment, UTC)).timestamp()  # type: ignore[arg-type, union-attr]
    assert start <= moment < end
