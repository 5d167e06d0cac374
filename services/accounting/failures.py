"""Which write failures are the event's fault (dead-letter it) and which are the store's
(retry later).

Unknown failures count as the store's: an event is only dead-lettered when the store
refused that very value, so an outage or a missing migration never empties the stream
into the dead-letter queue.
"""
from __future__ import annotations

import struct
from decimal import InvalidOperation

from clickhouse_connect.driver import exceptions as ch_errors
from sqlalchemy import exc as sa_errors

_PERMANENT: tuple[type[BaseException], ...] = (
    sa_errors.DataError,          # value out of range, string too long, bad encoding
    sa_errors.IntegrityError,     # a constraint other than the idempotency key
    ch_errors.DataError,          # a value ClickHouse cannot serialize into its column
    OverflowError, struct.error, InvalidOperation, TypeError,
)


def is_permanent(exc: BaseException) -> bool:
    """True when retrying the same event can never succeed."""
    return isinstance(exc, _PERMANENT)
