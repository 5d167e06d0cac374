"""Orgs, teams and users as the admin API shows them: each with its limits, flat as
LiteLLM users know them (`models`, `rpm_limit`, `tpm_limit`, `max_budget`, `budget_duration`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.tenancy import Level, LevelKind, Limits, Role

LIMIT_FIELDS = tuple(Limits.model_fields)


class _Record(Limits):
    id: str
    name: str
    created_at: datetime | None = None
    deleted_at: datetime | None = None

    object: LevelKind  # set by each subclass's default; not a column

    @property
    def limits(self) -> Limits:
        return Limits.model_validate({name: getattr(self, name) for name in LIMIT_FIELDS})

    def level(self) -> Level:
        return Level(kind=self.object, id=self.id, limits=self.limits)

    @property
    def owner_org(self) -> str:
        return self.id

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class OrgRecord(_Record):
    object: LevelKind = LevelKind.ORG


class TeamRecord(_Record):
    object: LevelKind = LevelKind.TEAM
    org_id: str

    @property
    def owner_org(self) -> str:
        return self.org_id


class UserRecord(_Record):
    object: LevelKind = LevelKind.USER
    org_id: str
    team_id: str | None = None
    email: str | None = None
    role: Role = Role.MEMBER

    @property
    def owner_org(self) -> str:
        return self.org_id


RECORDS: dict[LevelKind, type[_Record]] = {LevelKind.ORG: OrgRecord, LevelKind.TEAM: TeamRecord,
                                           LevelKind.USER: UserRecord}
TenantRecord = OrgRecord | TeamRecord | UserRecord
