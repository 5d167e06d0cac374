"""The tenancy contract: slug ids, limits as LiteLLM names them, roles scoped to their org."""
from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from shared.events import Principal
from shared.tenancy import ROLE_PERMISSIONS, Level, LevelKind, Limits, Permission, Role, Slug


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
