"""Admin API: keys and usage (orgs, teams, users: routes/admin_tenants.py). Bodies are read
like the /v1 bodies (size and depth limits), then validated strictly: 422 naming the field.
A caller works within its own org (the `global` role and the master key: every org); keys
of other orgs are 404. Every key-store call is bounded by the Postgres timeouts: a stalled
database gets 503 `key_store_unavailable`, never a hang. Every action is an audit event."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from services.ingress.access import Caller, KeyWriter, Reader, UsageReader
from services.ingress.admin_audit import broadcast_change, record_action
from services.ingress.admin_body import Page, admin_body, page_of
from services.ingress.openapi import ADMIN_ERRORS, body_of, errors
from services.ingress.routes.admin_tenants import Limit, Spent, _check_models, check_grant
from services.ingress.state import IngressState, State
from shared.admin_bodies import CreateKey, LimitFields, RotateKey, Text, UpdateKey
from shared.control import KeyRevoked
from shared.db.outage import bounded
from shared.errors import InvalidRequest, NotFound, ServiceUnavailable
from shared.keys import KeyRecord, create_key, get_key, list_keys, revoke_key, rotate_key, update_key
from shared.subjects import KEYS_REVOKED
from shared.tenancy import LevelKind, Limits, Role, Slug, budget_period
from shared.tenants.spend import spend_in_period
from shared.tenants.store import check_parents
from shared.usage_report import USAGE_GROUPS, UsageQuery, UsageReport

router = APIRouter(prefix="/admin", responses=errors(*ADMIN_ERRORS))

EARLIEST, LATEST = 1900, 2299  # the years ClickHouse's DateTime64 holds
KeyId = Annotated[Text, Path(max_length=40)]


class KeyView(KeyRecord, Spent):
    pass


class CreatedKey(BaseModel):
    key: str  # shown once
    record: KeyView


def _timeout(state: IngressState) -> float:
    return state.settings.ingress.key_store_timeout_s


async def _views(state: IngressState, records: list[KeyRecord]) -> list[KeyView]:
    now = datetime.now(UTC)
    spent = await bounded(spend_in_period(state.engine, LevelKind.KEY, {r.id: r.budget_duration for r in records},
                                          now), _timeout(state)) if records else {}
    return [KeyView.model_validate({**r.model_dump(), "spend": spent[r.id],
                                    "budget_period_start": budget_period(r.budget_duration, now)}) for r in records]


async def _visible_key(state: IngressState, caller: Caller, key_id: str) -> KeyRecord:
    record = await bounded(get_key(state.engine, key_id), _timeout(state))
    if record is None or not caller.sees(record.org_id):
        raise NotFound(f"No key with id {key_id}.", code="key_not_found")
    return record


def _public(record: KeyRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


@router.post("/keys", status_code=201, openapi_extra=body_of(CreateKey))
async def create(request: Request, caller: KeyWriter, state: State) -> CreatedKey:
    body = await admin_body(request, state, CreateKey)
    role = Role.GLOBAL if body.is_admin else body.role
    check_grant(caller, role)
    _check_models(state, body.models)
    org_id = caller.org_for(body.org_id) if body.org_id or caller.org else "default"

    async def parents() -> str | None:
        async with state.engine.connect() as conn:
            return await check_parents(conn, org_id, body.team_id, body.user_id)

    team_id = await bounded(parents(), _timeout(state))
    limits = Limits.model_validate(body.model_dump(include=set(LimitFields.model_fields)))
    new = await bounded(create_key(state.engine, name=body.name, org_id=org_id, team_id=team_id,
                                   user_id=body.user_id, role=role, scopes=body.scopes, allowed_ips=body.allowed_ips,
                                   expires_at=body.expires_at, limits=limits), _timeout(state))
    state.events.emit(new.record.event("key.created", source="ingress", actor_key_id=caller.key_id))
    record_action(state, caller, "created", LevelKind.KEY, new.record.id, org_id, after=_public(new.record))
    return CreatedKey(key=new.key, record=(await _views(state, [new.record]))[0])


@router.get("/keys")
async def keys(caller: Reader, state: State,
               org_id: Annotated[Slug | None, Query()] = None, team_id: Annotated[Slug | None, Query()] = None,
               user_id: Annotated[Slug | None, Query()] = None, limit: Limit = 50,
               after: Annotated[Text | None, Query(max_length=40)] = None) -> Page[KeyView]:
    if org_id is not None and not caller.sees(org_id):
        return Page(data=[], has_more=False)
    records = await bounded(list_keys(state.engine, org_id or caller.org, team_id=team_id, user_id=user_id,
                                      after=after, limit=limit + 1), _timeout(state))
    page = page_of(records, limit, lambda r: r.id)
    return Page(data=await _views(state, page.data), has_more=page.has_more, last_id=page.last_id)


@router.get("/keys/{key_id}")
async def get_one(key_id: KeyId, caller: Reader, state: State) -> KeyView:
    return (await _views(state, [await _visible_key(state, caller, key_id)]))[0]


@router.patch("/keys/{key_id}", openapi_extra=body_of(UpdateKey))
async def update(key_id: KeyId, request: Request, caller: KeyWriter, state: State) -> KeyView:
    body = await admin_body(request, state, UpdateKey)
    changes = body.changes()
    if "name" in changes and changes["name"] is None:
        raise InvalidRequest("'name' cannot be null.", param="name", status=422, code="invalid_value")
    check_grant(caller, changes.get("role"))
    _check_models(state, changes.get("models"))
    before = await _visible_key(state, caller, key_id)
    if {"org_id", "team_id", "user_id"} & changes.keys():  # moved: its new place must exist, in the org
        if changes.get("org_id", before.org_id) is None:
            raise InvalidRequest("'org_id' cannot be null.", param="org_id", status=422, code="invalid_value")
        org_id = caller.org_for(changes.get("org_id", before.org_id))
        user_id = changes.get("user_id", before.user_id if "team_id" not in changes else None)
        team_id = changes.get("team_id", None if user_id else before.team_id)

        async def parents() -> str | None:  # a user's key is of the user's team
            async with state.engine.connect() as conn:
                return await check_parents(conn, org_id, team_id, user_id)

        changes.update(org_id=org_id, user_id=user_id, team_id=await bounded(parents(), _timeout(state)))
    result = await bounded(update_key(state.engine, key_id, changes), _timeout(state))
    if result is None:
        raise NotFound(f"No key with id {key_id}.", code="key_not_found")
    before, after = result
    await broadcast_change(state, LevelKind.KEY, key_id)
    record_action(state, caller, "updated", LevelKind.KEY, key_id, after.org_id, _public(before), _public(after))
    return (await _views(state, [after]))[0]


@router.post("/keys/{key_id}/rotate", openapi_extra=body_of(RotateKey))
async def rotate(key_id: KeyId, request: Request, caller: KeyWriter, state: State) -> CreatedKey:
    body = await admin_body(request, state, RotateKey, optional=True)
    before = await _visible_key(state, caller, key_id)
    grace = body.grace_period_s if body.grace_period_s is not None else state.settings.ingress.key_rotation_grace_s
    new = await bounded(rotate_key(state.engine, key_id, timedelta(seconds=grace)), _timeout(state))
    if new is None:
        raise NotFound(f"No active key with id {key_id}.", code="key_not_found")
    await broadcast_change(state, LevelKind.KEY, key_id)
    record_action(state, caller, "rotated", LevelKind.KEY, key_id, new.record.org_id, _public(before),
                  _public(new.record))
    return CreatedKey(key=new.key, record=(await _views(state, [new.record]))[0])


@router.delete("/keys/{key_id}")
async def revoke(key_id: KeyId, caller: KeyWriter, state: State) -> KeyRevoked:
    before = await _visible_key(state, caller, key_id)
    record = await bounded(revoke_key(state.engine, key_id), _timeout(state))
    if record is None:
        raise NotFound(f"No key with id {key_id}.", code="key_not_found")
    state.keys.revoke(key_id)
    await state.nc.publish(KEYS_REVOKED, KeyRevoked(key_id=key_id).model_dump_json().encode())
    state.events.emit(record.event("key.revoked", source="ingress", actor_key_id=caller.key_id))
    record_action(state, caller, "revoked", LevelKind.KEY, key_id, record.org_id, _public(before), _public(record))
    return KeyRevoked(key_id=key_id)


@router.get("/usage")
async def usage(caller: UsageReader, state: State,
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
    """An org-scoped caller gets its own org's usage only (another org's id: 404)."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and not EARLIEST <= moment.year <= LATEST:
            raise InvalidRequest(f"'{name}' must fall between the years {EARLIEST} and {LATEST}.", param=name)
    if org_id is not None and not caller.sees(org_id):
        raise NotFound(f"No org with id {org_id}.", code="org_not_found", param="org_id")
    try:
        query = UsageQuery.model_validate({"group_by": [g for g in group_by.split(",") if g],
                                           "org_id": org_id or caller.org, "team_id": team_id, "user_id": user_id,
                                           "key_id": key_id, "model": model, "provider": provider, "status": status,
                                           "since": since and since.isoformat(), "until": until and until.isoformat()})
    except ValueError:
        raise InvalidRequest(f"group_by takes {', '.join(USAGE_GROUPS)}", param="group_by") from None
    report = await state.pipeline.usage(query)
    if report.error:
        raise ServiceUnavailable(f"Usage query failed: {report.error}")
    return report
