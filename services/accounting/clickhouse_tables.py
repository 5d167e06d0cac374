"""Names of the ClickHouse tables that more than one module reads or writes."""
from __future__ import annotations

TABLE = "usage_events"  # the raw usage rows, one per event (ReplacingMergeTree on the event id)
