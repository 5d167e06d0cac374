"""What a key may call: scopes per endpoint, and for the admin API one dependency that
checks the permission a route needs (the key's role, shared/tenancy.py ROLE_PERMISSIONS)
and gives the route the org the caller may see. Every role is scoped to its own org; the
`global` role and the master key see every org. An object of another org is not found
(404), never forbidden: a caller learns nothing of other orgs."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.ingress.state import CurrentKey, State, address_of
from shared.errors import NotFound, PermissionDenied
from shared.events import Principal
from shared.tenancy import ROLE_PERMISSIONS, Permission, Role, Scope, effective_scopes


def has_scope(principal: Principal, scope: Scope) -> bool:
    if principal.role is Role.GLOBAL and principal.scopes is None:
        return True
    return scope in effective_scopes(principal.role, principal.scopes)


def check_scope(principal: Principal, scope: Scope) -> Principal:
    if not has_scope(principal, scope):
        raise PermissionDenied(f"This API key lacks the `{scope.value}` scope this endpoint needs.",
                               code="scope_required")
    return principal


def requires_scope(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    async def scoped(principal: CurrentKey) -> Principal:
        return check_scope(principal, scope)

    return scoped


ChatKey = Annotated[Principal, Depends(requires_scope(Scope.CHAT))]
EmbeddingsKey = Annotated[Principal, Depends(requires_scope(Scope.EMBEDDINGS))]


@dataclass(frozen=True)
class Caller:
    """An admin API caller: its key, the org it may see (None: every org), its address."""

    principal: Principal
    org: str | None
    address: str | None

    @property
    def key_id(self) -> str:
        return self.principal.key_id

    def sees(self, org_id: str) -> bool:
        return self.org is None or self.org == org_id

    def org_for(self, org_id: str | None, what: str = "org") -> str:
        """The org a new object goes into: the one named (if the caller sees it), else its own."""
        if org_id is None:
            return self.org or self.principal.org_id
        if not self.sees(org_id):
            raise NotFound(f"No {what} with id {org_id}.", code="org_not_found", param="org_id")
        return org_id


def admin(permission: Permission) -> Callable[..., Awaitable[Caller]]:
    """The dependency of an admin route that needs `permission`."""
    async def caller(request: Request, principal: CurrentKey, state: State) -> Caller:
        if not has_scope(principal, Scope.ADMIN):
            raise PermissionDenied("This endpoint needs a key with the `admin` scope and an admin role.",
                                   code="admin_required")
        role = principal.role
        if role is None or permission not in ROLE_PERMISSIONS[role]:
            raise PermissionDenied(f"The role `{role.value if role else 'none'}` may not do this "
                                   f"(`{permission.value}` needed).", code="permission_denied")
        org = None if role is Role.GLOBAL else principal.org_id
        return Caller(principal=principal, org=org, address=address_of(request, state))

    return caller


Reader = Annotated[Caller, Depends(admin(Permission.READ))]
UsageReader = Annotated[Caller, Depends(admin(Permission.USAGE_READ))]
OrgWriter = Annotated[Caller, Depends(admin(Permission.ORGS_WRITE))]
TeamWriter = Annotated[Caller, Depends(admin(Permission.TEAMS_WRITE))]
UserWriter = Annotated[Caller, Depends(admin(Permission.USERS_WRITE))]
KeyWriter = Annotated[Caller, Depends(admin(Permission.KEYS_WRITE))]
