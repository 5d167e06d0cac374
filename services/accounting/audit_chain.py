"""The audit log's hash chain: one chain per org, in stream order.

Each row carries its JetStream sequence (`stream_seq`), the hash of the previous row of
its org in that order (`prev_hash`, `GENESIS` for the first) and its own hash:
sha256 over `prev_hash` and the row's canonical JSON (every column but the chain's two
hashes, `None` values left out so a column added later does not change old hashes).

The writer serialises per org: a transaction takes a Postgres advisory lock per org (in a
fixed order, so two replicas never deadlock), reads the org's predecessor hash and writes.
A batch whose events come before rows already written (two replicas of accounting writing
interleaved batches) re-links the rows after them, so the chain is always the stream's
order whatever the order the writes came in, and a replay rebuilds the same chain.

Rows are idempotent on the event id, as before: an event already present is skipped.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from nats.aio.msg import Msg
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.accounting.intake import parse_audit
from services.accounting.ledger import audit_row
from shared.db.tables import audit_log
from shared.events import AuditEvent

GENESIS = "0" * 64
CHAIN_COLUMNS = ("prev_hash", "hash")
LOCK_NAMESPACE = "jetgate.audit_chain:"


class Sequenced(NamedTuple):
    """An audit event with its sequence in the audit stream."""

    seq: int
    event: AuditEvent


def parse_audit_msg(msg: Msg) -> Sequenced:
    """The audit consumer's parser: the event (checked as accounting checks it) and its sequence."""
    return Sequenced(int(msg.metadata.sequence.stream), parse_audit(msg.data))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def canonical(row: Mapping[str, Any]) -> bytes:
    """The row as hashed: sorted keys, no spaces, times in UTC to the microsecond."""
    body = {name: _plain(value) for name, value in row.items() if name not in CHAIN_COLUMNS and value is not None}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(row: Mapping[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(row)).hexdigest()


def lock_key(org_id: str) -> int:
    """A signed 64-bit advisory lock key for the org's chain."""
    digest = hashlib.sha256((LOCK_NAMESPACE + org_id).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def chained_row(item: Sequenced) -> dict[str, Any]:
    return {**audit_row(item.event), "stream_seq": item.seq}


def _by_org(items: Sequence[Sequenced]) -> dict[str, list[dict[str, Any]]]:
    """Rows per org in stream order, one per event id (its first sequence)."""
    first: dict[str, Sequenced] = {}
    for item in sorted(items, key=lambda it: it.seq):
        first.setdefault(item.event.id, item)
    orgs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in first.values():
        orgs[item.event.org_id].append(chained_row(item))
    return orgs


async def _chain_org(conn: AsyncConnection, org_id: str, rows: list[dict[str, Any]]) -> int:
    """Append (or splice in) one org's new rows, under the org's lock. Returns rows inserted."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(org_id)})
    ids = [row["event_id"] for row in rows]
    present = set((await conn.execute(select(audit_log.c.event_id).where(audit_log.c.event_id.in_(ids)))).scalars())
    new = [row for row in rows if row["event_id"] not in present]
    if not new:
        return 0
    first_seq = new[0]["stream_seq"]
    in_org = audit_log.c.org_id == org_id
    prev = (await conn.execute(
        select(audit_log.c.hash).where(in_org, audit_log.c.stream_seq < first_seq)
        .order_by(audit_log.c.stream_seq.desc()).limit(1))).scalar_one_or_none() or GENESIS
    later = [dict(row._mapping) for row in await conn.execute(
        select(audit_log).where(in_org, audit_log.c.stream_seq > first_seq).order_by(audit_log.c.stream_seq))]
    relinked: list[dict[str, Any]] = []
    for row in sorted(new + later, key=lambda r: r["stream_seq"]):
        digest = row_hash(row, prev)
        if row.get("hash") is not None and (row["prev_hash"], row["hash"]) != (prev, digest):
            relinked.append({"b_event_id": row["event_id"], "b_prev": prev, "b_hash": digest})
        row["prev_hash"], row["hash"] = prev, digest
        prev = digest
    await conn.execute(insert(audit_log).on_conflict_do_nothing(index_elements=[audit_log.c.event_id]), new)
    if relinked:
        await conn.execute(update(audit_log).where(audit_log.c.event_id == bindparam("b_event_id"))
                           .values(prev_hash=bindparam("b_prev"), hash=bindparam("b_hash")), relinked)
    return len(new)


async def record_chained_audit(engine: AsyncEngine, items: Sequence[Sequenced]) -> int:
    """Write audit events with their stream sequences, chained per org. Returns rows inserted."""
    orgs = _by_org(items)
    if not orgs:
        return 0
    inserted = 0
    async with engine.begin() as conn:
        for org_id in sorted(orgs):  # one lock order for every writer
            inserted += await _chain_org(conn, org_id, orgs[org_id])
    return inserted


class BrokenLink(NamedTuple):
    org_id: str
    stream_seq: int
    event_id: str
    reason: str


class ChainReport(NamedTuple):
    rows: int
    orgs: int
    unchained: int  # rows written before the chain existed (no stream sequence)
    broken: BrokenLink | None


async def verify_chain(engine: AsyncEngine, org_id: str | None = None) -> ChainReport:
    """Walk every org's chain in stream order; stop at the first broken link."""
    chained = audit_log.c.stream_seq.is_not(None)
    query = select(audit_log).where(chained).order_by(audit_log.c.org_id, audit_log.c.stream_seq)
    legacy = select(text("count(*)")).select_from(audit_log).where(audit_log.c.stream_seq.is_(None))
    if org_id is not None:
        query = query.where(audit_log.c.org_id == org_id)
        legacy = legacy.where(audit_log.c.org_id == org_id)
    rows = orgs = 0
    current: str | None = None
    prev = GENESIS
    async with engine.connect() as conn:
        unchained = int((await conn.execute(legacy)).scalar_one())
        result = await conn.stream(query.execution_options(yield_per=2000))
        async for record in result:
            row = dict(record._mapping)
            if row["org_id"] != current:
                current, prev, orgs = row["org_id"], GENESIS, orgs + 1
            rows += 1
            where = (row["org_id"], int(row["stream_seq"]), row["event_id"])
            if row["prev_hash"] != prev:
                reason = ("the first row of the org does not start the chain (rows before it were deleted)"
                          if prev == GENESIS else
                          "prev_hash is not the hash of the row before it (a row was deleted, or rows were reordered)")
                await result.close()
                return ChainReport(rows, orgs, unchained, BrokenLink(*where, reason))
            if row["hash"] != row_hash(row, prev):
                await result.close()
                altered = "the row's contents do not match its hash (altered)"
                return ChainReport(rows, orgs, unchained, BrokenLink(*where, altered))
            prev = row["hash"]
    return ChainReport(rows, orgs, unchained, None)
