"""Every admin action leaves an `admin.action` audit event (who, what, the object before and
after — public records, never a key or its hash — and from which address), and a change
that a cached key depends on is broadcast to every ingress replica (TENANCY_CHANGED)."""
from __future__ import annotations

import logging
from typing import Any, Literal

from services.ingress.access import Caller
from services.ingress.state import IngressState
from shared.control import TenancyChanged
from shared.events import AdminData, AdminEvent
from shared.subjects import TENANCY_CHANGED
from shared.tenancy import LevelKind

log = logging.getLogger(__name__)

Action = Literal["created", "updated", "deleted", "revoked", "rotated"]


def record_action(state: IngressState, caller: Caller, action: Action, kind: LevelKind, object_id: str,
                  org_id: str, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    state.events.emit(AdminEvent(
        source="ingress", org_id=org_id, key_id=caller.key_id,
        data=AdminData(actor_key_id=caller.key_id, action=action, object=kind.value, object_id=object_id,
                       before=before, after=after, address=caller.address)))


async def broadcast_change(state: IngressState, kind: LevelKind, object_id: str) -> None:
    """This replica forgets at once; the others when the broadcast arrives (core NATS,
    at most once: a replica that misses it asks Postgres within its cache TTL)."""
    state.keys.invalidate(kind, object_id)
    try:
        await state.nc.publish(TENANCY_CHANGED, TenancyChanged(kind=kind, id=object_id).model_dump_json().encode())
    except Exception as exc:  # the change is stored; other replicas see it within their TTL
        log.warning("tenancy change not broadcast (%s)", type(exc).__name__)
