"""Admin API (admin keys only): keys and usage. Every key-store call is bounded by the
Postgres timeouts: a stalled database gets 503 `key_store_unavailable`, never a hang."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.ingress.state import AdminKey, State
from shared.db.outage import bounded
from shared.errors import InvalidRequest, NotFound, ServiceUnavailable
from shared.keys import KeyRecord, create_key, list_keys, revoke_key
from shared.protocol import KeyRevoked, UsageQuery, UsageReport
from shared.subjects import KEYS_REVOKED

router = APIRouter(prefix="/admin")


class CreateKey(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    models: list[str] | None = None
    org_id: str = Field(default="default", min_length=1, max_length=100)
    team_id: str | None = None
    is_admin: bool = False


class CreatedKey(BaseModel):
    key: str
    record: KeyRecord


@router.post("/keys", status_code=201)
async def create(body: CreateKey, admin: AdminKey, state: State) -> CreatedKey:
    unknown = [m for m in body.models or [] if state.config.model(m) is None]
    if unknown:
        raise InvalidRequest(f"Unknown models: {', '.join(unknown)}", param="models")
    new = await bounded(create_key(state.engine, name=body.name, models=body.models, org_id=body.org_id,
                                   team_id=body.team_id, is_admin=body.is_admin), state.settings.ingress.key_store_timeout_s)
    state.events.emit(new.record.event("key.created", source="ingress", actor_key_id=admin.key_id))
    return CreatedKey(key=new.key, record=new.record)


@router.get("/keys")
async def keys(admin: AdminKey, state: State, org_id: str | None = None) -> list[KeyRecord]:
    return await bounded(list_keys(state.engine, org_id), state.settings.ingress.key_store_timeout_s)


@router.delete("/keys/{key_id}")
async def revoke(key_id: str, admin: AdminKey, state: State) -> KeyRevoked:
    record = await bounded(revoke_key(state.engine, key_id), state.settings.ingress.key_store_timeout_s)
    if record is None:
        raise NotFound(f"No key with id {key_id}.", code="key_not_found")
    state.keys.revoke(key_id)
    await state.nc.publish(KEYS_REVOKED, KeyRevoked(key_id=key_id).model_dump_json().encode())
    state.events.emit(record.event("key.revoked", source="ingress", actor_key_id=admin.key_id))
    return KeyRevoked(key_id=key_id)


@router.get("/usage")
async def usage(admin: AdminKey, state: State,
                group_by: Annotated[str, Query()] = "model,key_id",
                org_id: str | None = None, key_id: str | None = None, model: str | None = None,
                since: str | None = None, until: str | None = None) -> UsageReport:
    try:
        query = UsageQuery.model_validate({"group_by": [g for g in group_by.split(",") if g], "org_id": org_id,
                                           "key_id": key_id, "model": model, "since": since, "until": until})
    except ValueError:
        raise InvalidRequest("group_by takes model, key_id, org_id, provider, day", param="group_by") from None
    report = await state.pipeline.usage(query)
    if report.error:
        raise ServiceUnavailable(f"Usage query failed: {report.error}")
    return report
