"""The tenancy contract: slug ids, limits as LiteLLM names them, roles scoped to their org."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from shared.events import Principal
from shared.tenancy import (
    ROLE_PERMISSIONS,
    Level,
    LevelKind,
    Limits,
    Permission,
    Role,
    Scope,
    Slug,
    allowed_models,
    budget_period,
    effective_scopes,
)


class _Org(BaseModel):
    id: Slug


@pytest.mark.parametrize("good", ["acme", "a", "acme-corp", "0org", "a" * 63])
def test_slugs_accept_lowercase_ids(good: str) -> None:
    assert _Org(id=good).id == good


@pytest.mark.parametrize("bad", ["a.b", "a b", "a_b", "Acme", "-acme", "", "a" * 64, "a>", "a*"])
def test_slugs_refuse_what_would_collide_as_a_subject_token(bad: str) -> None:
    with pytest.raises(ValidationError):
        _Org(id=bad)


def test_limits_take_litellm_names_and_refuse_others() -> None:
    limits = Limits.model_validate({"rpm_limit": 100, "tpm_limit": 1000, "max_budget": "12.5",
                                    "budget_duration": "30d", "models": ["gpt-4o"]})
    assert limits.max_budget == Decimal("12.5") and not limits.empty
    assert Limits().empty
    for bad in ({"budget_duration": "2w"}, {"rpm_limit": -1}, {"max_budgets": 1}):
        with pytest.raises(ValidationError):
            Limits.model_validate(bad)


def test_only_owner_and_global_write_orgs_and_members_read_usage_only() -> None:
    assert Permission.ORGS_WRITE in ROLE_PERMISSIONS[Role.OWNER]
    assert Permission.ORGS_WRITE not in ROLE_PERMISSIONS[Role.ADMIN]
    assert Permission.KEYS_WRITE in ROLE_PERMISSIONS[Role.ADMIN]
    assert ROLE_PERMISSIONS[Role.MEMBER] == {Permission.USAGE_READ}
    assert not any(p.endswith(":write") for p in ROLE_PERMISSIONS[Role.VIEWER])


def test_levels_stay_in_the_ingress_when_a_principal_travels() -> None:
    principal = Principal(key_id="key_1", org_id="acme",
                          levels=[Level(kind=LevelKind.ORG, id="acme", limits=Limits(rpm_limit=5))])
    assert "levels" not in principal.model_dump_json()
    assert Principal.model_validate_json(principal.model_dump_json()).levels == []


@pytest.mark.parametrize(("duration", "start"), [
    ("1h", "2026-03-18T14:00:00+00:00"), ("1d", "2026-03-18T00:00:00+00:00"),
    ("7d", "2026-03-16T00:00:00+00:00"),  # the Monday
    ("30d", "2026-03-12T00:00:00+00:00"),  # 20,520 days after 1970-01-05
    ("1mo", "2026-03-01T00:00:00+00:00"), (None, None),
])
def test_budget_periods_are_aligned_in_utc(duration: str | None, start: str | None) -> None:
    now = datetime(2026, 3, 18, 14, 37, 5, tzinfo=UTC)
    began = budget_period(duration, now)  # type: ignore[arg-type]
    assert (began.isoformat() if began else None) == start
    if began is not None:  # the same period for any moment in it
        assert budget_period(duration, began) == began  # type: ignore[arg-type]


def test_thirty_day_periods_follow_each_other() -> None:
    first = budget_period("30d", datetime(2026, 3, 12, tzinfo=UTC))
    assert first is not None and budget_period("30d", first - timedelta(seconds=1)) == first - timedelta(days=30)


def test_models_allowed_are_what_every_level_allows() -> None:
    def level(kind: LevelKind, models: list[str] | None) -> Level:
        return Level(kind=kind, id="x", limits=Limits(models=models))

    assert allowed_models([level(LevelKind.ORG, None), level(LevelKind.KEY, None)]) is None
    assert allowed_models([level(LevelKind.ORG, ["a", "b", "c"]), level(LevelKind.TEAM, None),
                           level(LevelKind.KEY, ["c", "a", "z"])]) == ["a", "c"]
    assert allowed_models([level(LevelKind.ORG, ["a"]), level(LevelKind.KEY, ["b"])]) == []


def test_scopes_default_by_role() -> None:
    assert effective_scopes(None, None) == {Scope.CHAT, Scope.EMBEDDINGS}
    assert effective_scopes(Role.VIEWER, None) == {Scope.CHAT, Scope.EMBEDDINGS, Scope.ADMIN}
    assert effective_scopes(Role.ADMIN, [Scope.ADMIN]) == {Scope.ADMIN}
