"""OpenAI's rate-limit headers, from the allowances a request took from.

`x-ratelimit-limit-requests`, `-remaining-requests`, `-reset-requests` and the same for
`-tokens`, for the level on the request's path with the least left (the one that refuses
first); `remaining` is what this replica can see (the shared remainder and its own
allowance), `reset` the time until that level's window ends. Absent when no level sets
that limit. A refusal (429 `rate_limit_exceeded`) carries them for the level that
refused (`refusal_headers`). `x-jetgate-budget-warning` names the levels past their warning share
(`org:acme, key:k1`).
"""
from __future__ import annotations

import math

from services.ingress.limits.allowance import Allowance
from services.ingress.limits.windows import reset_text

BUDGET_WARNING_HEADER = "x-jetgate-budget-warning"
_NAMES = {kind: (f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}", f"x-ratelimit-reset-{kind}")
          for kind in ("requests", "tokens")}


def rate_headers(kind: str, allowances: list[Allowance], now: float) -> dict[str, str]:
    """`kind`: `requests` or `tokens`."""
    names = _NAMES[kind]
    tightest = allowances[0] if len(allowances) == 1 else min(allowances, key=Allowance.remaining)
    end = tightest.end
    return {
        names[0]: str(tightest.limit),
        names[1]: str(tightest.remaining()),
        names[2]: reset_text(end - now if end != math.inf else math.inf),
    }


def refusal_headers(kind: str, limit: int, used: int, reset_s: float) -> dict[str, str]:
    """The same headers on a 429: the refusing level's limit, what it has left (less than
    the request needed) and the time until its window ends."""
    names = _NAMES[kind]
    return {names[0]: str(limit), names[1]: str(max(0, limit - used)), names[2]: reset_text(reset_s)}


def retry_after(seconds: float) -> str:
    """Whole seconds, at least 1 (Retry-After takes no fractions)."""
    return str(max(1, math.ceil(seconds))) if seconds != math.inf else "86400"
