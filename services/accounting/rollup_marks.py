"""Which rollup buckets a write must mark dirty (services/accounting/rollups.py).

A mark costs one more ClickHouse insert per batch, as much as the batch's rows in chDB. It
can be left out for a bucket that is still open, when this process has already marked it:
no builder rebuilds a bucket before its end plus `close_grace_s`, and a bucket never built
keeps that earlier mark outstanding, so the rebuild after the close reads these rows too.
"Still open" is judged on this process's clock after the rows are written, with half the
grace as the allowance for clocks that disagree; without a grace (a replay, a benchmark)
every write marks. Late events, into closed buckets, are always marked.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime

from services.accounting.rollups import BY_NAME, mark_rows


class Marks:
    def __init__(self, close_grace_s: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self._grace = close_grace_s
        self._clock = clock
        self._marked: set[tuple[str, datetime]] = set()  # open buckets this process has marked

    def _open(self, name: str, bucket: datetime, now: float) -> bool:
        if self._grace is None:
            return False
        return now + self._grace / 2 < bucket.timestamp() + BY_NAME[name].seconds + self._grace

    def due(self, times: Iterable[datetime]) -> list[list[object]]:
        """The marks to write for rows at these times, just written."""
        now = self._clock()
        self._marked = {(name, bucket) for name, bucket in self._marked if self._open(name, bucket, now)}
        return [row for row in mark_rows(times) if (row[0], row[1]) not in self._marked]

    def written(self, marks: Iterable[list[object]]) -> None:
        now = self._clock()
        for name, bucket in marks:
            assert isinstance(name, str) and isinstance(bucket, datetime)
            if self._open(name, bucket, now):
                self._marked.add((name, bucket))
