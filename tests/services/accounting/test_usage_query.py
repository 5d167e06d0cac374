"""ClickHouse (chDB) store and the usage query, called directly."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.accounting.clickhouse_store import ClickHouseStore
from services.accounting.usage_query import answer, build_sql, money, usage_report
from shared.usage_report import UsageQuery, UsageReport


@pytest.fixture
async def store(chdb_dsn: str) -> AsyncIterator[ClickHouseStore]:
    opened = await ClickHouseStore.open(chdb_dsn)
    yield opened
    await opened.close()


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


async def test_duplicates_collapse_and_groups_add_up(store, harness) -> None:
    events = [harness.usage("k1", "0.1", model="a", time=at(1)), harness.usage("k1", "0.2", model="b", time=at(1)),
              harness.usage("k2", "0.3", model="a", time=at(2)), harness.usage("k2", "0.000000000001", model="a",
                                                                                time=at(2, 23))]
    await store.insert_usage(events)
    await store.insert_usage(events[:2])  # redelivered
    report = await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=["day", "model"]))
    assert [(row.group, row.requests, row.cost) for row in report.rows] == [
        ({"day": "2025-03-01", "model": "a"}, 1, "0.1"),
        ({"day": "2025-03-01", "model": "b"}, 1, "0.2"),
        ({"day": "2025-03-02", "model": "a"}, 2, "0.300000000001"),
    ]
    assert report.rows[0].prompt_tokens == 10 and report.rows[0].completion_tokens == 5
    assert report.rows[0].total_tokens == 15

    # since is inclusive, until exclusive; zones are honoured, naive times are UTC.
    window = UsageQuery(org_id=harness.org_id, group_by=[],
                        since="2025-03-01T13:00:00+01:00", until="2025-03-02T23:00Z")
    assert [(row.requests, row.cost) for row in (await usage_report(store, window)).rows] == [(3, "0.6")]
    window = UsageQuery(org_id=harness.org_id, group_by=[], since="2025-03-01T12:00:00.001", until="2025-03-03")
    assert [(row.requests, row.cost) for row in (await usage_report(store, window)).rows] == [(2, "0.300000000001")]
    by_key = await usage_report(store, UsageQuery(org_id=harness.org_id, key_id="k2", model="a", group_by=["key_id"]))
    assert [(row.group, row.requests) for row in by_key.rows] == [({"key_id": "k2"}, 2)]


async def test_user_values_are_parameters_never_sql(store, harness) -> None:
    await store.insert_usage([harness.usage("k1", "1")])
    hostile = "x' OR 1=1 --"
    sql, _, params = build_sql(UsageQuery(org_id=hostile, model=hostile, group_by=["org_id"]))
    assert hostile not in sql and params["org_id"] == hostile
    assert (await usage_report(store, UsageQuery(org_id=hostile, group_by=["org_id"]))).rows == []
    assert (await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=[]))).rows[0].requests == 1


async def test_answer_always_replies(store) -> None:
    bad_group = UsageReport.model_validate_json(await answer(store, b'{"group_by": ["cost; DROP"]}', 10**6))
    assert bad_group.rows == [] and bad_group.error and bad_group.error.startswith("invalid usage query")
    bad_time = UsageReport.model_validate_json(await answer(store, json.dumps({"until": "soon"}).encode(), 10**6))
    assert bad_time.error == "until is not an ISO-8601 time: 'soon'"
    empty = UsageReport.model_validate_json(await answer(store, b"{}", 10**6))
    assert empty == UsageReport(rows=[])
    tiny = UsageReport.model_validate_json(await answer(store, b"{}", 10))
    assert tiny.error == "result too large: narrow the query"


async def test_rows_survive_reopening_the_same_path(chdb_dsn: str, harness) -> None:
    first = await ClickHouseStore.open(chdb_dsn)
    await first.insert_usage([harness.usage("k", "0.5")])
    await first.close()
    again = await ClickHouseStore.open(chdb_dsn)  # DDL is idempotent; data is still there
    try:
        report = await usage_report(again, UsageQuery(org_id=harness.org_id, group_by=[]))
    finally:
        await again.close()
    assert [(row.requests, row.cost) for row in report.rows] == [(1, "0.5")]


def test_money_strings() -> None:
    assert money("0.300000000000") == "0.3"
    assert money("100.000000000000") == "100"
    assert money("0.000000000000") == "0"
    assert money("0.000000000001") == "0.000000000001"


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the nearest ranks (numpy's default), computed here."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def test_groups_filters_totals_and_percentiles_from_known_rows(store, harness) -> None:
    specs = []  # (team, user, key, model, provider, status, latency, hour)
    for i in range(60):
        specs.append((f"t{i % 2}", f"u{i % 3}", f"k{i % 4}", ("a", "b")[i % 2 == 0 and i % 3 == 0],
                      ("openai", "anthropic")[i % 5 == 0], "error" if i % 7 == 0 else "cancelled" if i % 11 == 0 else "ok",
                      float((i * 37) % 101), 9 + i % 3))
    events = []
    for team, user, key, model, provider, status, latency, hour in specs:
        event = harness.usage(key, "0.01", model=model, team_id=team, time=at(4, hour))
        data = event.data.model_copy(update={"provider": provider, "status": status, "latency_ms": latency})
        events.append((event.model_copy(update={"data": data}), user))
    # user_id: the column exists before events carry it (tenancy); fill it as a later event would
    await store.insert_usage([event for event, _ in events])
    for user in ("u0", "u1", "u2"):
        ids = [event.id for event, owner in events if owner == user]
        await store.query("ALTER TABLE usage_events UPDATE user_id = {u:String} WHERE event_id IN {ids:Array(String)}"
                          " SETTINGS mutations_sync = 1", {"u": user, "ids": ids})

    def expect(rows: list[tuple], key) -> dict[str, tuple[int, int, float, float, float]]:  # type: ignore[no-untyped-def]
        groups: dict[str, list[tuple]] = {}
        for row in rows:
            groups.setdefault(key(row), []).append(row)
        return {name: (len(members), sum(m[5] == "error" for m in members),
                       percentile([m[6] for m in members], 0.5), percentile([m[6] for m in members], 0.95),
                       percentile([m[6] for m in members], 0.99)) for name, members in groups.items()}

    columns = {"team": 0, "user": 1, "key": 2, "model": 3, "provider": 4}
    for name, index in columns.items():
        report = await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=[name]))
        got = {row.group[name]: (row.requests, row.errors, row.latency_p50_ms, row.latency_p95_ms, row.latency_p99_ms)
               for row in report.rows}
        want = expect(specs, lambda row, i=index: row[i])
        assert got.keys() == want.keys(), name
        for group, values in want.items():
            assert got[group][:2] == values[:2], (name, group)
            assert got[group][2:] == pytest.approx(values[2:]), (name, group)
        assert report.totals is not None and report.totals.requests == 60 and report.totals.group == {}
        assert report.totals.errors == sum(s[5] == "error" for s in specs)
        assert report.totals.latency_p99_ms == pytest.approx(percentile([s[6] for s in specs], 0.99))

    by_hour = await usage_report(store, UsageQuery(org_id=harness.org_id, group_by=["hour", "day"]))
    assert [(row.group, row.requests) for row in by_hour.rows] == [
        ({"hour": f"2025-03-04T{h:02d}:00:00Z", "day": "2025-03-04"}, 20) for h in (9, 10, 11)]

    errors = await usage_report(store, UsageQuery(org_id=harness.org_id, status="error", provider="openai",
                                                  group_by=["model"]))
    chosen = [s for s in specs if s[5] == "error" and s[4] == "openai"]
    assert sum(row.requests for row in errors.rows) == len(chosen) > 0
    assert all(row.error_rate == 1.0 for row in errors.rows)
    team = await usage_report(store, UsageQuery(org_id=harness.org_id, team_id="t1", user_id="u2", group_by=[]))
    assert team.rows[0].requests == sum(1 for s in specs if s[0] == "t1" and s[1] == "u2")
    assert team.totals == team.rows[0]
    assert team.rows[0].error_rate == pytest.approx(
        sum(s[5] == "error" for s in specs if s[0] == "t1" and s[1] == "u2") / team.rows[0].requests)


async def test_schema_migrations_are_numbered_recorded_and_adopt_an_old_table(chdb_dsn: str) -> None:
    import clickhouse_connect

    from services.accounting.clickhouse_migrations import MIGRATIONS

    old = MIGRATIONS[0].statements[0]
    client = clickhouse_connect.get_client(dsn=chdb_dsn)
    client.command(old)  # a database from before schema_migrations
    client.close()
    store = await ClickHouseStore.open(chdb_dsn)
    try:
        versions = await store.query("SELECT version, name FROM schema_migrations ORDER BY version", {})
        columns = await store.query("SELECT name FROM system.columns WHERE table = 'usage_events'", {})
    finally:
        await store.close()
    assert [v for v, _ in versions] == [m.version for m in MIGRATIONS]
    assert "user_id" in {c for (c,) in columns}
    again = await ClickHouseStore.open(chdb_dsn)
    try:
        assert len(await again.query("SELECT version FROM schema_migrations", {})) == len(MIGRATIONS)
    finally:
        await again.close()
