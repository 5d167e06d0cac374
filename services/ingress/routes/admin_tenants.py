"""Admin API for orgs, teams and users: create, list (paginated, filtered), get, update
(`PATCH`), delete. Each object shows its limits and what it spent in its running budget
period. A caller sees its own org only (the `global` role and the master key: every org):
objects of other orgs are 404, in lists too. Every action is an audit event; a change that
cached keys depend on reaches every ingress replica at once."""
from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from services.ingress.access import Caller, OrgWriter, Reader, TeamWriter, UserWriter, admin
from services.ingress.admin_audit import broadcast_change, record_action
from services.ingress.admin_body import MAX_PAGE, Page, admin_body, page_of
from services.ingress.openapi import ADMIN_ERRORS, body_of, errors
from services.ingress.state import IngressState, State
from shared.admin_bodies import (
    CreateOrg,
    CreateTeam,
    CreateUser,
    LimitFields,
    Text,
    UpdateOrg,
    UpdateTeam,
    UpdateUser,
)
from shared.db.outage import bounded
from shared.errors import InvalidRequest, NotFound, PermissionDenied
from shared.tenancy import LevelKind, Permission, Role, Slug, budget_period
from shared.tenants import store
from shared.tenants.records import OrgRecord, TeamRecord, TenantRecord, UserRecord
from shared.tenants.spend import spend_in_period

router = APIRouter(prefix="/admin", responses=errors(*ADMIN_ERRORS))

ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3, Role.GLOBAL: 4}


def check_grant(caller: Caller, role: Role | None, param: str = "role") -> None:
    """A caller gives no role above its own; `global` only a global caller."""
    own = caller.principal.role or Role.VIEWER
    if role is not None and ROLE_RANK[role] > ROLE_RANK[own]:
        raise PermissionDenied(f"A `{own.value}` may not give the role `{role.value}`.", param=param,
                               code="permission_denied")


class Spent(BaseModel):
    spend: Decimal = Decimal(0)  # USD, in the running budget period
    budget_period_start: datetime | None = None  # None: the budget never resets (all time)


class OrgView(OrgRecord, Spent):
    pass


class TeamView(TeamRecord, Spent):
    pass


class UserView(UserRecord, Spent):
    pass


VIEWS: dict[LevelKind, type[OrgView | TeamView | UserView]] = {
    LevelKind.ORG: OrgView, LevelKind.TEAM: TeamView, LevelKind.USER: UserView}


async def views_of(state: IngressState, records: list[TenantRecord]) -> list[Any]:
    if not records:
        return []
    kind = records[0].object
    now = datetime.now(UTC)
    spent = await bounded(spend_in_period(state.engine, kind, {r.id: r.budget_duration for r in records}, now),
                          state.settings.ingress.key_store_timeout_s)
    return [VIEWS[kind].model_validate({**r.model_dump(), "spend": spent[r.id],
                                        "budget_period_start": budget_period(r.budget_duration, now)})
            for r in records]


def _new_id(kind: LevelKind) -> str:
    return f"{kind.value}-{secrets.token_hex(6)}"


def _timeout(state: IngressState) -> float:
    return state.settings.ingress.key_store_timeout_s


def _not_found(kind: LevelKind, object_id: str) -> NotFound:
    return NotFound(f"No {kind.value} with id {object_id}.", code=f"{kind.value}_not_found")


def _check_models(state: IngressState, models: list[str] | None) -> None:
    unknown = [m for m in models or [] if state.config.model(m) is None]
    if unknown:
        raise InvalidRequest(f"Unknown models: {', '.join(unknown)}", param="models", status=422,
                             code="invalid_value")


async def _created(state: IngressState, caller: Caller, kind: LevelKind, values: dict[str, Any]) -> Any:
    _check_models(state, values.get("models"))
    record = await bounded(store.create(state.engine, kind, values), _timeout(state))
    record_action(state, caller, "created", kind, record.id, record.owner_org, after=record.public())
    return (await views_of(state, [record]))[0]


@router.post("/orgs", status_code=201, openapi_extra=body_of(CreateOrg))
async def create_org(request: Request, caller: OrgWriter, state: State) -> OrgView:
    body = await admin_body(request, state, CreateOrg)
    if caller.org is not None:
        raise PermissionDenied("Only a global admin creates orgs.", code="permission_denied")
    return await _created(state, caller, LevelKind.ORG, body.model_dump())  # type: ignore[no-any-return]


@router.post("/teams", status_code=201, openapi_extra=body_of(CreateTeam))
async def create_team(request: Request, caller: TeamWriter, state: State) -> TeamView:
    body = await admin_body(request, state, CreateTeam)
    values = {**body.model_dump(), "id": body.id or _new_id(LevelKind.TEAM), "org_id": caller.org_for(body.org_id)}
    return await _created(state, caller, LevelKind.TEAM, values)  # type: ignore[no-any-return]


@router.post("/users", status_code=201, openapi_extra=body_of(CreateUser))
async def create_user(request: Request, caller: UserWriter, state: State) -> UserView:
    body = await admin_body(request, state, CreateUser)
    check_grant(caller, body.role)
    values = {**body.model_dump(), "id": body.id or _new_id(LevelKind.USER), "org_id": caller.org_for(body.org_id)}
    return await _created(state, caller, LevelKind.USER, values)  # type: ignore[no-any-return]


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="objects per page")]
After = Annotated[Text | None, Query(max_length=100, description="the `last_id` of the page before")]
OrgFilter = Annotated[Slug | None, Query()]


async def _page(state: IngressState, caller: Caller, kind: LevelKind, filters: dict[str, Any], after: str | None,
                limit: int) -> Page[Any]:
    org = caller.org
    wanted = filters.pop("org_id", None)
    if wanted is not None:
        if not caller.sees(wanted):
            return Page(data=[], has_more=False)
        org = wanted
    records = await bounded(store.list_objects(state.engine, kind, org, filters, after=after, limit=limit + 1),
                            _timeout(state))
    page = page_of(records, limit, lambda r: r.id)
    return Page(data=await views_of(state, page.data), has_more=page.has_more, last_id=page.last_id)


@router.get("/orgs")
async def list_orgs(caller: Reader, state: State, limit: Limit = 50, after: After = None) -> Page[OrgView]:
    return await _page(state, caller, LevelKind.ORG, {}, after, limit)


@router.get("/teams")
async def list_teams(caller: Reader, state: State, org_id: OrgFilter = None, limit: Limit = 50,
                     after: After = None) -> Page[TeamView]:
    return await _page(state, caller, LevelKind.TEAM, {"org_id": org_id}, after, limit)


@router.get("/users")
async def list_users(caller: Reader, state: State, org_id: OrgFilter = None,
                     team_id: Annotated[Slug | None, Query()] = None, role: Annotated[Role | None, Query()] = None,
                     limit: Limit = 50, after: After = None) -> Page[UserView]:
    return await _page(state, caller, LevelKind.USER, {"org_id": org_id, "team_id": team_id, "role": role},
                       after, limit)


ObjectId = Annotated[Text, Path(max_length=100)]


def _object_routes(kind: LevelKind, view: type[BaseModel], update_body: type[LimitFields],
                   writer: Callable[..., Awaitable[Caller]]) -> None:
    """GET, PATCH and DELETE of one kind's objects, by id."""
    path = f"/{kind.value}s/{{object_id}}"
    writes = Depends(writer)

    async def get_object(object_id: ObjectId, caller: Reader, state: State) -> Any:
        record = await bounded(store.get(state.engine, kind, object_id, caller.org), _timeout(state))
        if record is None:
            raise _not_found(kind, object_id)
        return (await views_of(state, [record]))[0]

    async def update_object(object_id: ObjectId, request: Request, state: State, caller: Caller = writes) -> Any:
        body = await admin_body(request, state, update_body)
        changes = body.changes()
        if "name" in changes and changes["name"] is None:
            raise InvalidRequest("'name' cannot be null.", param="name", status=422, code="invalid_value")
        if "role" in changes:
            if changes["role"] is None:
                raise InvalidRequest("'role' cannot be null.", param="role", status=422, code="invalid_value")
            check_grant(caller, changes["role"])
        _check_models(state, changes.get("models"))
        result = await bounded(store.update_object(state.engine, kind, object_id, caller.org, changes),
                               _timeout(state))
        if result is None:
            raise _not_found(kind, object_id)
        before, after = result
        await broadcast_change(state, kind, object_id)
        record_action(state, caller, "updated", kind, object_id, after.owner_org, before.public(), after.public())
        return (await views_of(state, [after]))[0]

    async def delete_object(object_id: ObjectId, state: State, caller: Caller = writes) -> Any:
        if kind is LevelKind.ORG and caller.org is not None:
            raise PermissionDenied("Only a global admin deletes orgs.", code="permission_denied")
        result = await bounded(store.delete_object(state.engine, kind, object_id, caller.org), _timeout(state))
        if result is None:
            raise _not_found(kind, object_id)
        before, revoked = result
        await broadcast_change(state, kind, object_id)
        record_action(state, caller, "deleted", kind, object_id, before.owner_org, before=before.public())
        return {"id": object_id, "object": kind.value, "deleted": True, "revoked_keys": revoked}

    router.add_api_route(path, get_object, methods=["GET"], response_model=view, name=f"get_{kind.value}")
    router.add_api_route(path, update_object, methods=["PATCH"], response_model=view, name=f"update_{kind.value}",
                         openapi_extra=body_of(update_body))
    router.add_api_route(path, delete_object, methods=["DELETE"], response_model=Deleted,
                         name=f"delete_{kind.value}")


class Deleted(BaseModel):
    id: str
    object: LevelKind
    deleted: bool
    revoked_keys: list[str]  # the keys beneath it, revoked with it


_object_routes(LevelKind.ORG, OrgView, UpdateOrg, admin(Permission.ORGS_WRITE))
_object_routes(LevelKind.TEAM, TeamView, UpdateTeam, admin(Permission.TEAMS_WRITE))
_object_routes(LevelKind.USER, UserView, UpdateUser, admin(Permission.USERS_WRITE))
