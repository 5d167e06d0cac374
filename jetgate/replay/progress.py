"""A plain progress line on stderr for long replays: events done (of how many, when the
stream says), skipped, rate. Redrawn in place on a terminal; elsewhere (a log) one line
every few seconds."""
from __future__ import annotations

import sys
import time
from typing import TextIO

LOG_EVERY_S = 5.0


class Progress:
    def __init__(self, label: str, total: int | None, *, interval_s: float = 0.5, enabled: bool = True,
                 out: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.skipped = 0
        self._out = out or sys.stderr
        self._enabled = enabled
        self._tty = self._out.isatty()
        self._interval_s = interval_s if self._tty else max(interval_s, LOG_EVERY_S)
        self._started = time.monotonic()
        self._shown = 0.0

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        count = f"{self.done:,}"
        if self.total:
            count += f" / {self.total:,} ({100 * self.done / self.total:.1f}%)"
        skipped = f", {self.skipped:,} skipped" if self.skipped else ""
        return (f"{self.label}: {count} events{skipped}, {self.rate():,.0f} events/s, "
                f"{time.monotonic() - self._started:.1f} s")

    def advance(self, done: int, skipped: int = 0) -> None:
        self.done += done
        self.skipped += skipped
        now = time.monotonic()
        if self._enabled and now - self._shown >= self._interval_s:
            self._shown = now
            self._out.write(("\r" + self.line() + "\x1b[K") if self._tty else self.line() + "\n")
            self._out.flush()

    def finish(self) -> None:
        if self._enabled:
            self._out.write(("\r" + self.line() + "\x1b[K\n") if self._tty else self.line() + "\n")
            self._out.flush()
