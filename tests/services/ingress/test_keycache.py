"""The key cache when Postgres goes away: known keys keep working, unknown keys get 503
(never 401), and revocations still evict."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy import event

from jetgate.embedded.postgres import EmbeddedPostgres
from services.ingress.keycache import KeyCache
from shared.db.engine import make_engine
from shared.db.migrate import upgrade
from shared.errors import AuthenticationFailed, KeyStoreUnavailable, ServiceUnavailable
from shared.keys import create_key, revoke_key
from shared.settings import IngressSettings, PostgresSettings
from shared.tenancy import LevelKind
from shared.tenants import store
from tests.process_tree import frozen


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A Postgres of this test's own, so it can be stopped without hurting others."""
    server = EmbeddedPostgres(tmp_path / "pg").start()
    upgrade(server.url)
    yield server
    server.stop()


async def test_database_outage_serves_cached_keys_and_503s_unknown_ones(own_postgres: EmbeddedPostgres) -> None:
    engine = make_engine(own_postgres.url, pool_size=1)
    try:
        known = await create_key(engine, name="known", models=["gpt-4o"])
        cache = KeyCache(engine, IngressSettings(key_cache_ttl_s=0.0), master_key=None)  # every call asks Postgres
        principal = await cache.authenticate(known.key)
        assert principal.key_id == known.record.id and principal.models == ["gpt-4o"]
        with pytest.raises(AuthenticationFailed):
            await cache.authenticate("jg-unknown-key-000000000000")

        own_postgres.stop()
        assert (await cache.authenticate(known.key)).key_id == known.record.id  # stale entry served
        with pytest.raises(ServiceUnavailable):
            await cache.authenticate("jg-never-seen-before-000000")
        cache.revoke(known.record.id)
        with pytest.raises(ServiceUnavailable):  # evicted: no longer vouched for without the store
            await cache.authenticate(known.key)
    finally:
        await engine.dispose()


async def test_revoked_key_is_refused_and_master_key_is_admin(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        new = await create_key(engine, name="to-revoke")
        cache = KeyCache(engine, IngressSettings(), master_key="jg-master-test-key")
        assert (await cache.authenticate(new.key)).key_id == new.record.id
        await revoke_key(engine, new.record.id)
        assert (await cache.authenticate(new.key)).key_id == new.record.id  # cached until told
        cache.revoke(new.record.id)
        with pytest.raises(AuthenticationFailed):
            await cache.authenticate(new.key)
        master = await cache.authenticate("jg-master-test-key")
        assert master.is_admin and master.key_id == "master"
    finally:
        await engine.dispose()


async def test_revocation_arriving_before_the_lookup_is_not_undone(database_url: str) -> None:
    """The broadcast can overtake a lookup that still sees the key as active."""
    engine = make_engine(database_url, pool_size=1)
    try:
        new = await create_key(engine, name="raced")
        cache = KeyCache(engine, IngressSettings(key_cache_ttl_s=60.0), master_key=None)
        cache.revoke(new.record.id)  # Postgres still says active
        with pytest.raises(AuthenticationFailed):
            await cache.authenticate(new.key)
    finally:
        await engine.dispose()


async def test_many_requests_for_one_new_key_make_one_lookup(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        new = await create_key(engine, name="popular")
        cache = KeyCache(engine, IngressSettings(key_cache_ttl_s=60.0), master_key=None)
        queries: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: queries.append(statement))
        principals = await asyncio.gather(*(cache.authenticate(new.key) for _ in range(50)))
        assert {p.key_id for p in principals} == {new.record.id}
        assert len([q for q in queries if "api_keys" in q]) == 1  # one query for fifty requests
    finally:
        await engine.dispose()


def paused(server: EmbeddedPostgres) -> AbstractContextManager[None]:
    """SIGSTOP the postmaster and every backend, SIGCONT after."""
    assert server.process is not None
    return frozen(server.process.pid)


FAST = PostgresSettings(connect_timeout_s=0.5, statement_timeout_s=0.5, pool_timeout_s=0.5)
LOOKUP_TIMEOUT_S = 1.0


async def test_a_stalled_postgres_never_hangs_a_lookup(own_postgres: EmbeddedPostgres) -> None:
    engine = make_engine(own_postgres.url, pool_size=2, postgres=FAST)
    try:
        known = await create_key(engine, name="known-before-the-stall")
        cache = KeyCache(engine, IngressSettings(key_cache_ttl_s=0.0, key_store_retry_s=0.3,
                                                 key_store_timeout_s=LOOKUP_TIMEOUT_S), master_key=None)
        assert (await cache.authenticate(known.key)).key_id == known.record.id
        with paused(own_postgres):
            async with asyncio.timeout(LOOKUP_TIMEOUT_S + 1):  # a hang fails here
                assert (await cache.authenticate(known.key)).key_id == known.record.id  # stale-while-error
                with pytest.raises(KeyStoreUnavailable) as unknown:
                    await cache.authenticate("jg-unknown-while-stalled-0000")
            assert unknown.value.status == 503 and unknown.value.code == "key_store_unavailable"
            assert cache.store_down
            # requests during the outage are answered from what is known, without waiting on the store
            async with asyncio.timeout(0.2):
                assert (await cache.authenticate(known.key)).key_id == known.record.id
        await asyncio.sleep(0.3)  # the retry pause (a setting) passes; the store is asked again
        later = await create_key(engine, name="made-after-the-stall")
        assert (await cache.authenticate(later.key)).key_id == later.record.id
        assert not cache.store_down
    finally:
        await engine.dispose()


async def test_stale_keys_are_served_only_within_their_bound(own_postgres: EmbeddedPostgres) -> None:
    engine = make_engine(own_postgres.url, pool_size=1, postgres=FAST)
    try:
        known = await create_key(engine, name="bounded-staleness")
        cache = KeyCache(engine, IngressSettings(key_cache_ttl_s=0.0, key_stale_s=0.0, key_store_retry_s=0.0,
                                                 key_store_timeout_s=LOOKUP_TIMEOUT_S), master_key=None)
        assert (await cache.authenticate(known.key)).key_id == known.record.id
        own_postgres.stop()
        with pytest.raises(KeyStoreUnavailable):  # past its bound: 503, never 401
            await cache.authenticate(known.key)
    finally:
        await engine.dispose()


async def test_an_outage_keeps_the_resolved_levels(own_postgres: EmbeddedPostgres) -> None:
    engine = make_engine(own_postgres.url, pool_size=1)
    try:
        await store.create(engine, LevelKind.ORG, {"id": "acme", "name": "Acme", "models": ["gpt-4o", "o1"],
                                                   "rpm_limit": 10})
        await store.create(engine, LevelKind.TEAM, {"id": "eng", "org_id": "acme", "name": "Eng", "tpm_limit": 99})
        key = await create_key(engine, name="team-key", org_id="acme", team_id="eng", models=["o1", "gpt-4o-mini"])
        cache = KeyCache(engine, IngressSettings(key_cache_ttl_s=0.0), master_key=None)
        seen = await cache.authenticate(key.key)
        own_postgres.stop()
        stale = await cache.authenticate(key.key)
        assert stale.levels == seen.levels and stale.models == seen.models == ["o1"]
        assert [(lv.kind, lv.limits.rpm_limit, lv.limits.tpm_limit) for lv in stale.levels] == [
            (LevelKind.ORG, 10, None), (LevelKind.TEAM, None, 99), (LevelKind.KEY, None, None)]
        cache.invalidate(LevelKind.TEAM, "eng")  # a change at the team: no longer vouched for
        with pytest.raises(ServiceUnavailable):
            await cache.authenticate(key.key)
    finally:
        await engine.dispose()
