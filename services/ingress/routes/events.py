"""`GET /events/usage`, `GET /events/audit`: the caller's organisation's events as
server-sent events, live, from `?since=` (RFC 3339) or after `Last-Event-ID` (the stream
sequence each event carries in `id:`), filtered by type, key and model (docs/events.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from services.ingress.event_feed.access import feed_org
from services.ingress.event_feed.query import FeedKind, FeedQuery
from services.ingress.event_feed.response import FeedResponse
from services.ingress.openapi import errors
from services.ingress.state import CurrentKey, State
from shared.errors import InvalidRequest, ServiceUnavailable

router = APIRouter(prefix="/events", responses=errors(400, 401, 403, 503))

STREAM: dict[int | str, dict[str, object]] = {200: {"description": "server-sent events", "content": {"text/event-stream": {}}}}
Values = Annotated[list[str] | None, Query(max_length=2000)]


def _values(raw: list[str] | None) -> frozenset[str]:
    """Repeated parameters and comma-separated lists alike."""
    return frozenset(v.strip() for item in raw or [] for v in item.split(",") if v.strip())


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if len(raw) > 6 and raw[-6] == " ":  # `+01:00` sent unencoded in a query string arrives as ` 01:00`
        raw = raw[:-6] + "+" + raw[-5:]
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise InvalidRequest("`since` must be an RFC 3339 time with an offset, e.g. 2026-12-01T10:00:00Z.",
                             param="since", code="invalid_value")
    return since


def _after(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise InvalidRequest("`Last-Event-ID` must be the `id` of an event of this stream (a stream sequence).",
                             param="Last-Event-ID", code="invalid_value")
    return int(raw)


async def _feed(kind: FeedKind, request: Request, principal: CurrentKey, state: State, org_id: str | None,
                since: str | None, types: list[str] | None, key_ids: list[str] | None, models: list[str] | None,
                last_event_id: str | None) -> FeedResponse:
    feeds = state.feeds
    if feeds is None:
        raise ServiceUnavailable("Event feeds are not running on this replica.", code="events_unavailable")
    org = feed_org(principal, org_id)
    wanted = _values(types)
    query = FeedQuery(kind=kind, org_id=org, since=_since(since), after_seq=_after(last_event_id),
                      types=wanted, key_ids=_values(key_ids), models=_values(models))
    unknown = sorted(wanted - set(query.source.types))
    if unknown:
        raise InvalidRequest(f"Unknown {kind.value} event types: {', '.join(unknown)} "
                             f"(known: {', '.join(query.source.types)}).", param="type", code="invalid_value")
    return FeedResponse(feeds, await feeds.reader(query), query)


@router.get("/usage", response_class=FeedResponse, status_code=200, responses=STREAM)
async def usage(request: Request, principal: CurrentKey, state: State,
                org_id: Annotated[str | None, Query(max_length=100)] = None,
                since: Annotated[str | None, Query(max_length=64)] = None,
                type: Values = None, key_id: Values = None, model: Values = None,
                last_event_id: Annotated[str | None, Header(max_length=32)] = None) -> FeedResponse:
    return await _feed(FeedKind.USAGE, request, principal, state, org_id, since, type, key_id, model, last_event_id)


@router.get("/audit", response_class=FeedResponse, status_code=200, responses=STREAM)
async def audit(request: Request, principal: CurrentKey, state: State,
                org_id: Annotated[str | None, Query(max_length=100)] = None,
                since: Annotated[str | None, Query(max_length=64)] = None,
                type: Values = None, key_id: Values = None, model: Values = None,
                last_event_id: Annotated[str | None, Header(max_length=32)] = None) -> FeedResponse:
    return await _feed(FeedKind.AUDIT, request, principal, state, org_id, since, type, key_id, model, last_event_id)
