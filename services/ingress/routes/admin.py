"""Admin API (admin keys only): keys and usage. Bodies are read and validated like the
/v1 bodies (size and depth limits, strict types, 400 naming the parameter); every value
that reaches Postgres or the bus is one they can store. Every key-store call is bounded by
the Postgres timeouts: a stalled database gets 503 `key_store_unavailable`, never a hang."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.ingress.body import parse_body, read_body
from services.ingress.openapi import ADMIN_ERRORS, body_of, errors
from services.ingress.state import AdminKey, State
from shared.db.outage import bounded
from shared.errors import InvalidRequest, NotFound, ServiceUnavailable
from shared.keys import KeyRecord, create_key, list_keys, revoke_key
from shared.protocol import USAGE_GROUPS, KeyRevoked, UsageQuery, UsageReport
from shared.subjects import KEYS_REVOKED

router = APIRouter(prefix="/admin", responses=errors(*ADMIN_ERRORS))

EARLIEST, LATEST = 1900, 2299  # the years ClickHouse's DateTime64 holds


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_storable)]


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Text = Field(min_length=1, max_length=200)
    models: list[Annotated[Text, Field(min_length=1, max_length=200)]] | None = None
    org_id: Text = Field(default="default", min_length=1, max_length=100)
    team_id: Text | None = Field(default=None, max_length=100)
    is_admin: bool = False


class CreatedKey(BaseModel):
    key: str
    record: KeyRecord


@router.post("/keys", status_code=201, openapi_extra=body_of(CreateKey))
async def create(request: Request, admin: AdminKey, state: State) -> CreatedKey:
    raw = await read_body(request, state.settings.ingress.max_body_bytes)
    body = parse_body(raw, CreateKey, state.settings.ingress.max_json_depth)
    unknown = [m for m in body.models or [] if state.config.model(m) is None]
    if unknown:
        raise InvalidRequest(f"Unknown models: {', '.join(unknown)}", param="models")
    new = await bounded(create_key(state.engine, name=body.name, models=body.models, org_id=body.org_id,
                                   team_id=body.team_id, is_admin=body.is_admin), state.settings.ingress.key_store_timeout_s)
    state.events.emit(new.record.event("key.created", source="ingress", actor_key_id=admin.key_id))
    return CreatedKey(key=new.key, record=new.record)


@router.get("/keys")
async def keys(admin: AdminKey, state: State,
               org_id: Annotated[Text | None, Query(max_length=100)] = None) -> list[KeyRecord]:
    return await bounded(list_keys(state.engine, org_id), state.settings.ingress.key_store_timeout_s)


@router.delete("/keys/{key_id}")
async def revoke(key_id: Annotated[Text, Path(max_length=40)], admin: AdminKey, state: State) -> KeyRevoked:
    record = await bounded(revoke_key(state.engine, key_id), state.settings.ingress.key_store_timeout_s)
    if record is None:
        raise NotFound(f"No key with id {key_id}.", code="key_not_found")
    state.keys.revoke(key_id)
    await state.nc.publish(KEYS_REVOKED, KeyRevoked(key_id=key_id).model_dump_json().encode())
    state.events.emit(record.event("key.revoked", source="ingress", actor_key_id=admin.key_id))
    return KeyRevoked(key_id=key_id)


@router.get("/usage")
async def usage(admin: AdminKey, state: State,
                group_by: Annotated[str, Query(description="comma-separated: " + ", ".join(USAGE_GROUPS))] = "model,key_id",
                org_id: Annotated[Text | None, Query(max_length=100)] = None,
                team_id: Annotated[Text | None, Query(max_length=100)] = None,
                user_id: Annotated[Text | None, Query(max_length=100)] = None,
                key_id: Annotated[Text | None, Query(max_length=40)] = None,
                model: Annotated[Text | None, Query(max_length=200)] = None,
                provider: Annotated[Text | None, Query(max_length=200)] = None,
                status: Annotated[Literal["ok", "error", "cancelled"] | None, Query()] = None,
                since: Annotated[datetime | None, Query(description="ISO-8601 time or date, inclusive")] = None,
                until: Annotated[datetime | None, Query(description="ISO-8601 time or date, exclusive")] = None,
                ) -> UsageReport:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and not EARLIEST <= moment.year <= LATEST:
            raise InvalidRequest(f"'{name}' must fall between the years {EARLIEST} and {LATEST}.", param=name)
    try:
        query = UsageQuery.model_validate({"group_by": [g for g in group_by.split(",") if g], "org_id": org_id,
                                           "team_id": team_id, "user_id": user_id, "key_id": key_id, "model": model,
                                           "provider": provider, "status": status,
                                           "since": since and since.isoformat(), "until": until and until.isoformat()})
    except ValueError:
        raise InvalidRequest(f"group_by takes {', '.join(USAGE_GROUPS)}", param="group_by") from None
    report = await state.pipeline.usage(query)
    if report.error:
        raise ServiceUnavailable(f"Usage query failed: {report.error}")
    return report
