"""Usage rollups on real chDB: the same answers as the raw rows, duplicates counted once,
late events counted after the rebuild, open buckets left to the raw rows, rollups of an
older schema rebuilt with the token details."""
from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.corrections import correct_analytics
from services.accounting.rollup_builder import maintain_rollups, rebuild_due, rollup_states
from services.accounting.rollup_marks import Marks
from services.accounting.usage_plan import choose
from services.accounting.usage_query import build_sql, to_report, usage_report, window
from shared.events import UsageEvent
from shared.settings import AccountingSettings
from shared.usage_report import UsageQuery, UsageReport

DETAILS = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")
SUMS = ("group", "requests", "prompt_tokens", "completion_tokens", "total_tokens", *DETAILS, "cost", "errors",
        "error_rate")
# a rollup's percentile is the exact percentile of a rank at most this far off (t-digest)
RANK_TOLERANCE = 0.02


@pytest.fixture
async def store(chdb_dsn: str) -> AsyncIterator[ClickHouseStore]:
    opened = await ClickHouseStore.open(chdb_dsn)
    yield opened
    await opened.close()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 5, day, hour, minute, tzinfo=UTC)


def workload(harness, count: int = 2400) -> list[UsageEvent]:  # type: ignore[no-untyped-def]
    """Events over three days, four hours a day, every dimension varied (cached, cache-write and
    reasoning parts in some); seeded."""
    rng = random.Random(8)
    events = []
    for i in range(count):
        prompt, completion = rng.randrange(500), rng.randrange(200)
        event = harness.usage(f"k{i % 4}", str(Decimal(rng.randrange(1, 10**6)) / 10**9),
                              model=("m-a", "m-b")[i % 2], tokens=(prompt, completion),
                              team_id=f"t{i % 4 // 2}", user_id=f"u{i % 3}",
                              time=at(10 + i % 3, 8 + i % 4, rng.randrange(60)) + timedelta(seconds=rng.random()))
        cached = rng.randrange(prompt + 1) if i % 3 else 0
        data = event.data.model_copy(update={"provider": ("p-x", "p-y")[i % 8 < 2],
                                             "status": "error" if i % 13 == 0 else "ok",
                                             "latency_ms": round(rng.lognormvariate(6, 0.7), 1),
                                             "cached_tokens": cached,
                                             "cache_write_tokens": rng.randrange(prompt - cached + 1) if i % 5 else 0,
                                             "reasoning_tokens": rng.randrange(completion + 1) if i % 7 else 0})
        events.append(event.model_copy(update={"data": data}))
    return events


async def raw_report(store: ClickHouseStore, query: UsageQuery) -> UsageReport:
    """The answer from the raw rows alone (exact percentiles)."""
    sql, groups, params = build_sql(query)
    return to_report(groups, await store.query(sql, params))


def rank_error(latencies: list[float], value: float, q: float) -> float:
    """How far the ranks `value` could hold among these latencies are from q."""
    ordered = sorted(latencies)
    below = sum(v < value for v in ordered) / len(ordered)
    at_most = sum(v <= value for v in ordered) / len(ordered)
    return 0.0 if below <= q <= at_most else min(abs(q - below), abs(q - at_most))


def assert_same(exact: UsageReport, rolled: UsageReport, members: dict[tuple[str, ...], list[float]],
                groups: list[str]) -> None:
    assert len(exact.rows) == len(rolled.rows) > 0
    assert exact.totals is not None and rolled.totals is not None
    for want, got in zip([*exact.rows, exact.totals], [*rolled.rows, rolled.totals], strict=True):
        assert got.model_dump(include=set(SUMS)) == want.model_dump(include=set(SUMS))
        latencies = members[tuple(got.group.get(name, "") for name in groups)] if got.group else members[()]
        for q, value in ((0.5, got.latency_p50_ms), (0.95, got.latency_p95_ms), (0.99, got.latency_p99_ms)):
            assert rank_error(latencies, value, q) <= RANK_TOLERANCE, (got.group, q, value)


def latencies_by(events: list[UsageEvent], groups: list[str], keep) -> dict[tuple[str, ...], list[float]]:  # type: ignore[no-untyped-def]
    def value(event: UsageEvent, name: str) -> str:
        return {"hour": event.time.strftime("%Y-%m-%dT%H:00:00Z"), "day": event.time.strftime("%Y-%m-%d"),
                "key": event.key_id or "", "team": event.team_id or "", "user": event.user_id or "",
                "model": event.data.model, "provider": event.data.provider or "", "org": event.org_id}[name]
    found: dict[tuple[str, ...], list[float]] = {}
    for event in events:
        if keep(event):
            found.setdefault(tuple(value(event, name) for name in groups), []).append(event.data.latency_ms)
            found.setdefault((), []).append(event.data.latency_ms)
    return found


async def test_rollups_answer_as_the_raw_rows_do(store, harness) -> None:
    events = workload(harness)
    await store.insert_usage(events)
    await store.insert_usage(events[:300])  # redelivered before any rollup exists
    assert await rebuild_due(store, close_grace_s=0) > 0
    org = harness.org_id
    shapes = [  # (query, the rollup expected to answer it, which events it selects)
        (UsageQuery(org_id=org, group_by=["model", "day"]), "daily", lambda e: True),
        (UsageQuery(org_id=org, group_by=["provider", "hour"]), "hourly", lambda e: True),
        (UsageQuery(org_id=org, group_by=["key"], since="2025-05-10T09:30:00Z", until="2025-05-12T10:00:00Z"),
         "daily_keys", lambda e: at(10, 9, 30) <= e.time < at(12, 10)),
        (UsageQuery(org_id=org, group_by=["team", "user"], model="m-a"), "daily_keys", lambda e: e.data.model == "m-a"),
        (UsageQuery(org_id=org, group_by=["model"], since="2025-05-11T08:15:00Z", until="2025-05-11T10:45:00Z"),
         "hourly", lambda e: at(11, 8, 15) <= e.time < at(11, 10, 45)),
        (UsageQuery(org_id=org, group_by=["org"], provider="p-y"), "daily", lambda e: e.data.provider == "p-y"),
        (UsageQuery(group_by=["hour"], model="m-b"), "hourly_models", lambda e: e.data.model == "m-b"),
    ]
    states = await rollup_states(store)
    for query, rollup, keep in shapes:
        since_ms, until_ms = window(query)
        plan = choose(query, since_ms, until_ms, states)
        assert plan.rollup is not None and plan.rollup.name == rollup, query
        exact, rolled = await raw_report(store, query), await usage_report(store, query)
        assert exact.totals is not None and exact.totals.requests == sum(map(keep, events))
        for name in DETAILS:  # the raw rows' totals, as the events hold them (the rollup's: assert_same)
            assert getattr(exact.totals, name) == sum(getattr(e.data, name) for e in events if keep(e)) > 0, name
        assert_same(exact, rolled, latencies_by(events, list(query.group_by), keep), list(query.group_by))


async def test_queries_no_rollup_covers_read_the_raw_rows_exactly(store, harness) -> None:
    events = workload(harness, 400)
    await store.insert_usage(events)
    await rebuild_due(store, close_grace_s=0)
    states = await rollup_states(store)
    for query in (UsageQuery(org_id=harness.org_id, group_by=["status"]),
                  UsageQuery(org_id=harness.org_id, group_by=["model"], status="error"),
                  UsageQuery(org_id=harness.org_id, group_by=["hour", "key"]),
                  UsageQuery(org_id=harness.org_id, group_by=["day"], since="2025-05-10T08:10Z", until="2025-05-10T08:50Z")):
        assert choose(query, *window(query), states).rollup is None, query
        assert await usage_report(store, query) == await raw_report(store, query)


async def test_a_redelivered_or_replayed_event_counts_once(store, harness) -> None:
    events = workload(harness, 600)
    await store.insert_usage(events)
    await rebuild_due(store, close_grace_s=0)
    query = UsageQuery(org_id=harness.org_id, group_by=["day"])
    before = await usage_report(store, query)
    assert before.totals is not None and before.totals.requests == 600

    await store.insert_usage(events[10:20])  # redelivered into rolled-up buckets: dirty again
    states = await rollup_states(store)
    assert any(states[name].dirty for name in states)
    assert await usage_report(store, query) == before  # the dirty buckets from the raw rows, FINAL
    assert await rebuild_due(store, close_grace_s=0) > 0
    assert not any(state.dirty for state in (await rollup_states(store)).values())
    assert await usage_report(store, query) == before

    # a correction changes a status in a rolled-up bucket: counted after the rebuild too
    ok = next(event for event in events if event.data.status == "ok")
    await correct_analytics(store, {ok.id: "error"})
    await rebuild_due(store, close_grace_s=0)
    after = await usage_report(store, query)
    assert after.totals is not None and after.totals.requests == 600
    assert after.totals.errors == before.totals.errors + 1


async def test_a_late_event_into_a_closed_bucket_counts_after_the_rebuild(store, harness) -> None:
    events = workload(harness, 300)
    await store.insert_usage(events)
    await rebuild_due(store, close_grace_s=0)
    query = UsageQuery(org_id=harness.org_id, group_by=["key"], since="2025-05-10", until="2025-05-13")
    before = {row.group["key"]: row.requests for row in (await usage_report(store, query)).rows}
    late = harness.usage("k-late", "0.5", time=at(11, 9, 30))
    await store.insert_usage([late])
    # until rebuilt its bucket is read from the raw rows; after, from the rollup
    assert {row.group["key"]: row.requests for row in (await usage_report(store, query)).rows} == {**before, "k-late": 1}
    assert await rebuild_due(store, close_grace_s=0) == 4  # its day in two daily rollups, its hour in two
    plan = choose(query, *window(query), await rollup_states(store))
    assert plan.rollup is not None and plan.raw == []
    report = await usage_report(store, query)
    assert {row.group["key"]: row.requests for row in report.rows} == {**before, "k-late": 1}


async def test_open_buckets_are_left_to_the_raw_rows_until_closed(store, harness) -> None:
    now = datetime.now(UTC)
    await store.insert_usage([harness.usage("k", "0.1", time=now), harness.usage("k", "0.2", time=now)])
    assert await rebuild_due(store, close_grace_s=3600) == 0  # this hour and day are not closed
    query = UsageQuery(org_id=harness.org_id, group_by=["model"])
    assert choose(query, *window(query), await rollup_states(store)).rollup is None
    report = await usage_report(store, query)
    assert report.totals is not None and (report.totals.requests, report.totals.cost) == (2, "0.3")


async def test_the_builder_rebuilds_soon_after_a_write(store, harness) -> None:
    settings = AccountingSettings(rollup_rebuild_delay_s=0.05, rollup_close_grace_s=0)
    stop = asyncio.Event()
    task = asyncio.create_task(maintain_rollups(store, settings, stop))
    try:
        await store.insert_usage(workload(harness, 50))

        async def clean() -> bool:
            states = await rollup_states(store)
            return all(not state.dirty and state.clean for state in states.values())
        await harness.eventually(clean, 10, "the rollups to be rebuilt")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_migration_marks_the_rows_of_an_older_database_dirty(chdb_dsn: str) -> None:
    import clickhouse_connect

    from services.accounting.clickhouse_migrations import MIGRATIONS, apply_migrations

    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    apply_migrations(client, MIGRATIONS[:2])
    client.command("INSERT INTO usage_events (event_id, time, org_id, model, cost, latency_ms) "
                   "VALUES ('e1', '2025-05-10 08:30:00', 'o', 'm', 0.5, 12)")
    client.close()
    store = await ClickHouseStore.open(chdb_dsn)
    try:
        states = await rollup_states(store)
        assert {name: sorted(state.dirty) for name, state in states.items()} == {
            "daily": [int(at(10, 0).timestamp())], "hourly": [int(at(10, 8).timestamp())],
            "hourly_models": [int(at(10, 8).timestamp())], "daily_keys": [int(at(10, 0).timestamp())]}
        await rebuild_due(store, close_grace_s=0)
        report = await usage_report(store, UsageQuery(org_id="o", group_by=["day"]))
        assert [(row.group, row.requests, row.cost) for row in report.rows] == [({"day": "2025-05-10"}, 1, "0.5")]
    finally:
        await store.close()


async def test_migration_5_rebuilds_the_rollups_built_before_the_token_details(chdb_dsn: str) -> None:
    import clickhouse_connect

    from services.accounting.clickhouse_migrations import MIGRATIONS, apply_migrations

    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    assert [m.version for m in MIGRATIONS[:4]] == [1, 2, 3, 4]
    apply_migrations(client, MIGRATIONS[:4])
    client.command("INSERT INTO usage_events (event_id, time, org_id, model, prompt_tokens, completion_tokens, "
                   "total_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost, latency_ms) "
                   "VALUES ('e1', '2025-05-10 08:30:00', 'o', 'm', 100, 50, 150, 60, 30, 20, 0.5, 12)")
    # the builder of before migration 5 rolled the day up, without the details, and recorded it built
    client.command("INSERT INTO usage_rollup_daily (bucket, org_id, model, provider, requests, errors, prompt_tokens, "
                   "completion_tokens, total_tokens, cost, latency, built_at) SELECT toStartOfDay(time) AS b, org_id, "
                   "model, provider, count(), countIf(status = 'error'), sum(prompt_tokens), sum(completion_tokens), "
                   "sum(total_tokens), sum(cost), quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms), now64(6) "
                   "FROM usage_events FINAL GROUP BY b, org_id, model, provider")
    client.command("INSERT INTO usage_rollup_built VALUES ('daily', '2025-05-10 00:00:00', now64(6))")
    client.close()
    query = UsageQuery(org_id="o", group_by=["day"])
    details = {"cached_tokens": 60, "cache_write_tokens": 30, "reasoning_tokens": 20}
    store = await ClickHouseStore.open(chdb_dsn)  # applies migration 5
    try:
        states = await rollup_states(store)
        assert states["daily"].dirty == {int(at(10, 0).timestamp())} and not states["daily"].clean
        for rebuilt in (False, True):  # the raw rows answer until the rebuild, the rollup after
            if rebuilt:
                assert await rebuild_due(store, close_grace_s=0) == 4
            plan = choose(query, *window(query), await rollup_states(store))
            assert (plan.rollup.name if plan.rollup else None) == ("daily" if rebuilt else None)
            report = await usage_report(store, query)
            assert report.totals is not None
            assert [row.model_dump(include={"group", "requests", "total_tokens", *DETAILS}) for row in
                    (*report.rows, report.totals)] == [{"group": {"day": "2025-05-10"}, "requests": 1,
                                                        "total_tokens": 150, **details},
                                                       {"group": {}, "requests": 1, "total_tokens": 150, **details}]
    finally:
        await store.close()


def test_a_write_marks_an_open_bucket_once_and_a_closed_one_always() -> None:
    now = [at(10, 9, 30).timestamp()]
    marks = Marks(close_grace_s=600, clock=lambda: now[0])
    first = marks.due([at(10, 9, 1), at(10, 9, 2)])
    assert sorted((name, bucket) for name, bucket in first) == sorted(
        [("daily", at(10, 0)), ("hourly_models", at(10, 9)), ("hourly", at(10, 9)), ("daily_keys", at(10, 0))])
    marks.written(first)
    assert marks.due([at(10, 9, 40)]) == []  # its buckets are open and marked already
    now[0] = at(10, 10, 6).timestamp()  # 9:00-10:00 ended more than grace/2 ago: it counts as closed
    assert {name for name, _ in marks.due([at(10, 9, 50)])} == {"hourly_models", "hourly"}
    assert len(Marks(None).due([at(10, 9, 1)])) == 4  # without a grace, every write marks
