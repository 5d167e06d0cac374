"""The admin API's request bodies (`/admin/keys`, `/admin/orgs|teams|users`) and their field
types: one contract for the ingress's routes (which read the body and answer 422 naming the
field) and the `jetgate keys|orgs|teams|users` commands (which validate their flags with the
same models). Strict: a JSON string is not a number; enums are read from their strings."""
from __future__ import annotations

import ipaddress
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.tenancy import BudgetDuration, Role, Scope, Slug


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError("must be an IP address or a CIDR network (`10.0.0.0/8`)") from None


Text = Annotated[str, AfterValidator(_storable)]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
Cidr = Annotated[str, AfterValidator(_cidr)]
# enums from JSON strings (the bodies are strict otherwise)
RoleField = Annotated[Role, Field(strict=False)]
ScopeField = Annotated[Scope, Field(strict=False)]


class LimitFields(BaseModel):
    """The limits every org, team, user and key accepts (shared/tenancy.py `Limits`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    models: list[Annotated[Text, Field(min_length=1, max_length=200)]] | None = None
    rpm_limit: int | None = Field(default=None, ge=0, le=2**31 - 1)
    tpm_limit: int | None = Field(default=None, ge=0, le=2**31 - 1)
    max_budget: Decimal | None = Field(default=None, ge=0.0, lt=1e10, strict=False,
                                       description="USD")
    budget_duration: BudgetDuration | None = None

    def changes(self, *exclude: str) -> dict[str, Any]:
        """The fields the body named (a PATCH): column: value, null clearing."""
        return {name: getattr(self, name) for name in self.model_fields_set if name not in exclude}


LIMIT_NAMES = tuple(LimitFields.model_fields)


class _KeyFields(LimitFields):
    role: RoleField | None = Field(default=None, description="admin API role; none: no admin permissions")
    scopes: list[ScopeField] | None = Field(default=None, description="none: chat and embeddings (and admin with a role)")
    allowed_ips: list[Cidr] | None = Field(default=None, max_length=100, description="CIDRs; none: any address")
    expires_at: datetime | None = Field(default=None, strict=False)


class CreateKey(_KeyFields):
    name: Name
    org_id: Slug | None = Field(default=None, description="default: the caller's org (`default` for global)")
    team_id: Slug | None = Field(default=None, description="a service key of this team")
    user_id: Slug | None = Field(default=None, description="a key of this user (and the user's team)")
    is_admin: bool = Field(default=False, description="the `global` role (kept from before roles)")


class UpdateKey(_KeyFields):
    name: Name | None = None
    org_id: Slug | None = Field(default=None, description="move the key to this org (a global admin only)")
    team_id: Slug | None = Field(default=None, description="make it a service key of this team (null: none)")
    user_id: Slug | None = Field(default=None, description="give it to this user (null: none)")


class RotateKey(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    grace_period_s: float | None = Field(default=None, ge=0, le=365 * 86400, strict=False,
                                         description="how long the old secret stays valid (default: a setting)")


class CreateOrg(LimitFields):
    id: Slug = Field(description="a slug: [a-z0-9][a-z0-9-]{0,62}")
    name: Name


class UpdateOrg(LimitFields):
    name: Name | None = None


class CreateTeam(LimitFields):
    id: Slug | None = Field(default=None, description="a slug; made up when absent")
    org_id: Slug | None = Field(default=None, description="default: the caller's org")
    name: Name


class UpdateTeam(LimitFields):
    name: Name | None = None


class CreateUser(LimitFields):
    id: Slug | None = Field(default=None, description="a slug; made up when absent")
    org_id: Slug | None = Field(default=None, description="default: the caller's org")
    team_id: Slug | None = None
    name: Name
    email: Annotated[Text, Field(max_length=320)] | None = None
    role: RoleField = Role.MEMBER


class UpdateUser(LimitFields):
    name: Name | None = None
    email: Annotated[Text, Field(max_length=320)] | None = None
    role: RoleField | None = None
    team_id: Slug | None = None


KEY_BODIES = (CreateKey, UpdateKey, RotateKey)
TENANT_BODIES = (CreateOrg, UpdateOrg, CreateTeam, UpdateTeam, CreateUser, UpdateUser)
