"""API keys against the session's real, migrated Postgres: only the hash is stored."""
from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import api_keys
from shared.keys import KEY_PREFIX, create_key, find_key, hash_key, key_hash_of, list_keys, revoke_key


async def test_create_key_stores_only_the_hash(engine: AsyncEngine, org_id: str) -> None:
    new = await create_key(engine, name="ci", models=["gpt-4o"], org_id=org_id, team_id="t1")
    assert new.key.startswith(KEY_PREFIX) and len(new.key) >= 40
    assert new.record.prefix == new.key[:10] and new.record.id.startswith("key_")

    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == new.record.id))).one()
    assert row.key_hash == hashlib.sha256(new.key.encode()).hexdigest() == hash_key(new.key)
    stored = " ".join(str(value) for value in row)
    assert new.key not in stored and new.key[10:] not in stored  # neither the key nor its secret part
    assert (row.org_id, row.team_id, row.models, row.role) == (org_id, "t1", ["gpt-4o"], None)
    assert await key_hash_of(engine, new.record.id) == row.key_hash


async def test_find_key_by_hash(engine: AsyncEngine, org_id: str) -> None:
    new = await create_key(engine, name="finder", org_id=org_id, is_admin=True)
    found = await find_key(engine, hash_key(new.key))
    assert found is not None
    assert (found.id, found.name, found.org_id, found.is_admin, found.revoked_at) == (
        new.record.id, "finder", org_id, True, None)
    principal = found.principal()
    assert (principal.key_id, principal.org_id, principal.is_admin, principal.models) == (
        new.record.id, org_id, True, None)

    assert await find_key(engine, hash_key(new.key + "x")) is None
    assert await find_key(engine, new.key) is None  # the raw key is not a lookup value


async def test_every_key_is_new(engine: AsyncEngine, org_id: str) -> None:
    keys = [await create_key(engine, name=f"k{i}", org_id=org_id) for i in range(5)]
    assert len({k.key for k in keys}) == 5 and len({k.record.id for k in keys}) == 5


async def test_empty_model_list_means_every_model(engine: AsyncEngine, org_id: str) -> None:
    new = await create_key(engine, name="all", models=[], org_id=org_id)
    found = await find_key(engine, hash_key(new.key))
    assert found is not None and found.models is None and new.record.models is None


async def test_revoke_key(engine: AsyncEngine, org_id: str) -> None:
    keep = await create_key(engine, name="keep", org_id=org_id)
    gone = await create_key(engine, name="gone", org_id=org_id)
    revoked = await revoke_key(engine, gone.record.id)
    assert revoked is not None and revoked.id == gone.record.id and revoked.revoked_at is not None

    found = await find_key(engine, hash_key(gone.key))
    assert found is not None and found.revoked_at == revoked.revoked_at
    still = await find_key(engine, hash_key(keep.key))
    assert still is not None and still.revoked_at is None
    assert await revoke_key(engine, "key_does_not_exist") is None


async def test_list_keys_by_org_in_creation_order(engine: AsyncEngine, org_id: str) -> None:
    first = await create_key(engine, name="first", org_id=org_id)
    second = await create_key(engine, name="second", org_id=org_id)
    await create_key(engine, name="elsewhere", org_id=org_id + "-other")
    listed = await list_keys(engine, org_id)
    assert [k.id for k in listed] == [first.record.id, second.record.id]
    everyone = {k.id for k in await list_keys(engine)}
    assert {first.record.id, second.record.id} <= everyone and len(everyone) >= 3
