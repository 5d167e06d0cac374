"""Orgs, teams and users through the admin API of a real ingress (Postgres, NATS): slugs,
limits, and keys resolved through every level."""
from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest

from tests.services.ingress.routes.conftest import MASTER_HEADERS, Ingress, bearer


def slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_org(client: httpx.AsyncClient, **fields: object) -> str:
    org_id = slug("org")
    response = await client.post("/admin/orgs", json={"id": org_id, "name": "Acme Corp", **fields},
                                 headers=MASTER_HEADERS)
    assert response.status_code == 201, response.text
    return org_id


@pytest.mark.parametrize("bad", ["a.b", "a b", "a_b", "Acme", "-a", "a" * 64])
async def test_org_ids_are_slugs(ingress: Ingress, bad: str) -> None:
    async with ingress() as client:
        response = await client.post("/admin/orgs", json={"id": bad, "name": "x"}, headers=MASTER_HEADERS)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "id" and error["type"] == "invalid_request_error" and error["code"] == "invalid_value"


async def test_org_is_created_once_and_shows_limits_and_spend(ingress: Ingress) -> None:
    async with ingress() as client:
        org_id = await make_org(client, rpm_limit=100, max_budget="12.5", budget_duration="30d", models=["gpt-4o"])
        again = await client.post("/admin/orgs", json={"id": org_id, "name": "again"}, headers=MASTER_HEADERS)
        assert again.status_code == 409 and again.json()["error"]["param"] == "id"
        shown = (await client.get(f"/admin/orgs/{org_id}", headers=MASTER_HEADERS)).json()
    assert (shown["id"], shown["name"], shown["rpm_limit"], shown["models"]) == (org_id, "Acme Corp", 100, ["gpt-4o"])
    assert Decimal(shown["max_budget"]) == Decimal("12.5") and shown["budget_duration"] == "30d"
    assert Decimal(shown["spend"]) == 0 and shown["budget_period_start"] is not None and shown["object"] == "org"


async def test_bad_limits_are_422_naming_the_field(ingress: Ingress) -> None:
    async with ingress() as client:
        org_id = await make_org(client)
        cases = [({"budget_duration": "2w"}, "budget_duration"), ({"rpm_limit": -1}, "rpm_limit"),
                 ({"models": ["no-such-model"]}, "models"), ({"max_budget": "lots"}, "max_budget")]
        for fields, param in cases:
            response = await client.post("/admin/teams", json={"org_id": org_id, "name": "t", **fields},
                                         headers=MASTER_HEADERS)
            assert response.status_code == 422 and response.json()["error"]["param"] == param, response.text


async def test_a_key_passes_every_level_and_may_use_what_all_allow(ingress: Ingress) -> None:
    async with ingress() as client:
        org_id = await make_org(client, models=["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"], tpm_limit=5000)
        team = await client.post("/admin/teams", json={"org_id": org_id, "name": "Eng", "rpm_limit": 50,
                                                       "models": ["gpt-4o", "text-embedding-3-small"]},
                                 headers=MASTER_HEADERS)
        assert team.status_code == 201, team.text
        team_id = team.json()["id"]
        user = await client.post("/admin/users", json={"org_id": org_id, "team_id": team_id, "name": "Ada",
                                                       "email": "ada@example.com", "max_budget": 3},
                                 headers=MASTER_HEADERS)
        assert user.status_code == 201, user.text
        user_id = user.json()["id"]
        made = await client.post("/admin/keys", json={"name": "ada's", "org_id": org_id, "user_id": user_id,
                                                      "models": ["gpt-4o", "gpt-4o-mini"], "rpm_limit": 7},
                                 headers=MASTER_HEADERS)
        assert made.status_code == 201, made.text
        key, record = made.json()["key"], made.json()["record"]
        assert record["team_id"] == team_id and record["user_id"] == user_id and record["rpm_limit"] == 7
        models = await client.get("/v1/models", headers=bearer(key))
        assert [m["id"] for m in models.json()["data"]] == ["gpt-4o"]  # org ∩ team ∩ key

        app = client._transport.app  # type: ignore[attr-defined]
        principal = await app.state.ingress.keys.authenticate(key)
    assert [(level.kind.value, level.id) for level in principal.levels] == [
        ("org", org_id), ("team", team_id), ("user", user_id), ("key", record["id"])]
    assert [level.limits.rpm_limit for level in principal.levels] == [None, 50, None, 7]
    assert principal.levels[0].limits.tpm_limit == 5000 and principal.levels[2].limits.max_budget == Decimal(3)
    assert (principal.org_id, principal.team_id, principal.user_id, principal.models) == (
        org_id, team_id, user_id, ["gpt-4o"])
    assert "levels" not in principal.model_dump()  # kept in the ingress, never on the bus


async def test_parents_must_exist_in_the_org(ingress: Ingress) -> None:
    async with ingress() as client:
        org_a, org_b = await make_org(client), await make_org(client)
        team_b = (await client.post("/admin/teams", json={"org_id": org_b, "name": "B"},
                                    headers=MASTER_HEADERS)).json()["id"]
        cases = [("/admin/teams", {"org_id": slug("nowhere"), "name": "t"}, "org_id"),
                 ("/admin/users", {"org_id": org_a, "team_id": team_b, "name": "u"}, "team_id"),
                 ("/admin/keys", {"org_id": org_a, "team_id": team_b, "name": "k"}, "team_id"),
                 ("/admin/keys", {"org_id": org_a, "user_id": slug("ghost"), "name": "k"}, "user_id")]
        for path, body, param in cases:
            response = await client.post(path, json=body, headers=MASTER_HEADERS)
            assert response.status_code == 422 and response.json()["error"]["param"] == param, (path, response.text)
