"""Who may read an organisation's events: one function, so the tenancy's role and
permission check plugs in here."""
from __future__ import annotations

from shared.errors import PermissionDenied
from shared.events import Principal
from shared.tenancy import Role, Scope

MASTER_KEY_ID = "master"  # JETGATE_MASTER_KEY's principal (services/ingress/keycache.py)


def sees_every_org(principal: Principal) -> bool:
    return principal.key_id == MASTER_KEY_ID or principal.role == Role.GLOBAL


def may_read_events(principal: Principal, org_id: str) -> bool:
    """The master key (or a global role) reads any organisation's events; any other key only
    its own organisation's, when it has the `events` scope (None: scopes not yet assigned,
    every scope its role allows) or is an admin of that organisation."""
    if sees_every_org(principal):
        return True
    if principal.org_id != org_id:
        return False
    return principal.is_admin or principal.scopes is None or Scope.EVENTS in principal.scopes


def feed_org(principal: Principal, requested: str | None) -> str:
    """The organisation whose events this caller is sent: its own, or `?org_id=` (the master
    key; any other key only its own org)."""
    org_id = requested or principal.org_id
    if not may_read_events(principal, org_id):
        if org_id != principal.org_id:
            raise PermissionDenied("This key may read only its own organisation's events.", code="org_not_allowed")
        raise PermissionDenied("This key lacks the `events` scope.", code="scope_required")
    return org_id
