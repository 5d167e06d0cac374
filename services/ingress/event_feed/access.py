"""Who may read an organisation's events: one function (`may_read_events`), on the tenancy's
scopes and roles (shared/tenancy.py, services/ingress/access.py)."""
from __future__ import annotations

from services.ingress.access import has_scope
from shared.errors import PermissionDenied
from shared.events import Principal
from shared.subjects import SYSTEM_ORG
from shared.tenancy import Role, Scope

MASTER_KEY_ID = "master"  # JETGATE_MASTER_KEY's principal (services/ingress/keycache.py)
ORG_ADMINS = frozenset({Role.OWNER, Role.ADMIN})


def sees_every_org(principal: Principal) -> bool:
    return principal.key_id == MASTER_KEY_ID or principal.role is Role.GLOBAL


def may_read_events(principal: Principal, org_id: str) -> bool:
    """The master key (or the `global` role) reads any organisation's events, and the gateway's
    own (`SYSTEM_ORG`: provider health, config loaded); any other key only its own
    organisation's, with the `events` scope or as an admin (owner) of it."""
    if sees_every_org(principal):
        return True
    if org_id == SYSTEM_ORG:
        return False
    if principal.org_id != org_id:
        return False
    return has_scope(principal, Scope.EVENTS) or principal.role in ORG_ADMINS or principal.is_admin


def feed_org(principal: Principal, requested: str | None) -> str:
    """The organisation whose events this caller is sent: its own, or `?org_id=` (the master
    key, `_system` included; any other key only its own org)."""
    org_id = requested or principal.org_id
    if not may_read_events(principal, org_id):
        if org_id != principal.org_id:
            raise PermissionDenied("This key may read only its own organisation's events.", code="org_not_allowed")
        raise PermissionDenied("This API key lacks the `events` scope this endpoint needs.", code="scope_required")
    return org_id
