"""Control messages on core NATS, broadcast to every replica of a service (no queue group):
the ingress tells the routers to stop a call or send its reply again, and the admin API
tells every ingress that a key or a tenant changed (subjects: shared/subjects.py)."""
from __future__ import annotations

from pydantic import BaseModel

from shared.tenancy import LevelKind


class CancelRequest(BaseModel):
    """Broadcast to every router: stop this call's upstream request (streamed or not), charge
    what was made. The ingress sends it when the client went away or it gave up waiting."""

    call_id: str


class ReplyAgain(BaseModel):
    """Broadcast to every router: send this call's whole reply again, if you kept it. The
    ingress asks once, when a call that reached an upstream fell silent after a bus outage
    (the reply may be what the outage lost: services/router/kept_replies.py)."""

    call_id: str


class KeyRevoked(BaseModel):
    """Broadcast to every ingress: forget this key at once."""

    key_id: str


class TenancyChanged(BaseModel):
    """Broadcast to every ingress: an org, team, user or key changed; forget the keys beneath it."""

    kind: LevelKind
    id: str
