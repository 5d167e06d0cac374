"""The admin API's access rules and the key lifecycle on real ingress apps (Postgres, NATS):
org isolation, roles, scopes, expiry, revocation, rotation, IP allowlists, changes reaching
another replica's cache, last-used times."""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.tables import api_keys
from tests.services.ingress.routes.conftest import MASTER_HEADERS, Ingress, bearer
from tests.services.ingress.routes.test_admin_tenants import make_org, slug


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    response = await client.post(path, json=body, headers=bearer(key) if key else MASTER_HEADERS)
    assert response.status_code == 201, response.text
    return response.json()


async def new_key(client: httpx.AsyncClient, org_id: str, **fields: Any) -> tuple[str, str]:
    made = await post(client, "/admin/keys", {"name": slug("key"), "org_id": org_id, **fields})
    return made["key"], made["record"]["id"]


async def org_with_objects(client: httpx.AsyncClient) -> dict[str, str]:
    org_id = await make_org(client)
    team = (await post(client, "/admin/teams", {"org_id": org_id, "name": "team"}))["id"]
    user = (await post(client, "/admin/users", {"org_id": org_id, "team_id": team, "name": "user"}))["id"]
    _, key_id = await new_key(client, org_id, user_id=user)
    return {"org": org_id, "team": team, "user": user, "key": key_id}


async def test_an_org_admin_sees_nothing_of_another_org(ingress: Ingress) -> None:
    async with ingress() as client:
        a, b = await org_with_objects(client), await org_with_objects(client)
        admin_a, _ = await new_key(client, a["org"], role="admin")
        h = bearer(admin_a)
        for kind in ("org", "team", "user", "key"):
            assert (await client.get(f"/admin/{kind}s/{a[kind]}", headers=h)).status_code == 200
            theirs = await client.get(f"/admin/{kind}s/{b[kind]}", headers=h)
            assert theirs.status_code == 404 and theirs.json()["error"]["code"] == f"{kind}_not_found", kind
            patched = await client.patch(f"/admin/{kind}s/{b[kind]}", json={"rpm_limit": 1}, headers=h)
            assert patched.status_code == (403 if kind == "org" else 404), kind  # an admin writes no org at all
            listed = (await client.get(f"/admin/{kind}s", params={"limit": 200}, headers=h)).json()["data"]
            assert a[kind] in {o["id"] for o in listed} and b[kind] not in {o["id"] for o in listed}
            assert {o.get("org_id", o["id"]) for o in listed} == {a["org"]}
        assert (await client.get("/admin/keys", params={"org_id": b["org"]}, headers=h)).json()["data"] == []
        assert (await client.get("/admin/users", params={"org_id": b["org"]}, headers=h)).json()["data"] == []
        refused = await client.post("/admin/keys", json={"name": "x", "org_id": b["org"]}, headers=h)
        assert refused.status_code == 404 and refused.json()["error"]["param"] == "org_id"
        assert (await client.post("/admin/teams", json={"name": "x", "org_id": b["org"]}, headers=h)).status_code == 404
        assert (await client.delete(f"/admin/keys/{b['key']}", headers=h)).status_code == 404
        assert (await client.post(f"/admin/keys/{b['key']}/rotate", headers=h)).status_code == 404
        usage = await client.get("/admin/usage", params={"org_id": b["org"]}, headers=h)
        assert usage.status_code == 404
        own = await post(client, "/admin/keys", {"name": "own"}, key=admin_a)  # no org named: the caller's own
        assert own["record"]["org_id"] == a["org"]
        # a global key sees every org
        global_key, _ = await new_key(client, "default", role="global")
        assert (await client.get(f"/admin/users/{b['user']}", headers=bearer(global_key))).status_code == 200


async def test_roles(ingress: Ingress) -> None:
    async with ingress() as client:
        org = await org_with_objects(client)
        keys = {role: (await new_key(client, org["org"], role=role))[0] for role in ("viewer", "member", "owner", "admin")}

        async def status(role: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
            response = await client.request(method, path, json=body, headers=bearer(keys[role]))
            return response.status_code

        assert await status("viewer", "GET", f"/admin/keys/{org['key']}") == 200
        assert await status("viewer", "POST", "/admin/keys", {"name": "v"}) == 403
        assert await status("viewer", "PATCH", f"/admin/teams/{org['team']}", {"rpm_limit": 3}) == 403
        assert await status("member", "GET", f"/admin/keys/{org['key']}") == 403
        assert await status("member", "GET", "/admin/usage?org_id=" + slug("other")) == 404  # usage it may read
        assert await status("owner", "PATCH", f"/admin/orgs/{org['org']}", {"rpm_limit": 3}) == 200
        assert await status("admin", "PATCH", f"/admin/orgs/{org['org']}", {"rpm_limit": 4}) == 403
        assert await status("owner", "POST", "/admin/orgs", {"id": slug("org"), "name": "n"}) == 403
        assert await status("admin", "POST", "/admin/keys", {"name": "o", "role": "owner"}) == 403
        assert await status("admin", "POST", "/admin/users", {"name": "u", "role": "admin"}) == 201
        assert await status("owner", "POST", "/admin/keys", {"name": "g", "role": "global"}) == 403
        plain, _ = await new_key(client, org["org"])
        refused = await client.get("/admin/keys", headers=bearer(plain))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_required"
        viewer = await client.post("/admin/keys", json={"name": "v"}, headers=bearer(keys["viewer"]))
        assert viewer.json()["error"]["code"] == "permission_denied"


async def test_scopes(ingress: Ingress) -> None:
    async with ingress() as client:
        org_id = await make_org(client)
        embed_only, _ = await new_key(client, org_id, scopes=["embeddings"])
        chat = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []},
                                 headers=bearer(embed_only))
        assert chat.status_code == 403 and chat.json()["error"]["code"] == "scope_required"
        messages = await client.post("/v1/messages", json={}, headers=bearer(embed_only))
        assert messages.status_code == 403
        admin_no_scope, _ = await new_key(client, org_id, role="admin", scopes=["chat"])
        refused = await client.get("/admin/keys", headers=bearer(admin_no_scope))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_required"
        chat_only, _ = await new_key(client, org_id, scopes=["chat"])
        embeddings = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"},
                                       headers=bearer(chat_only))
        assert embeddings.status_code == 403 and embeddings.json()["error"]["code"] == "scope_required"


async def _status(client: httpx.AsyncClient, key: str, **headers: str) -> tuple[int, str | None]:
    response = await client.get("/v1/models", headers={**bearer(key), **headers})
    return response.status_code, response.json().get("error", {}).get("code")


async def test_expired_revoked_rotated_and_malformed_keys(ingress: Ingress) -> None:
    async with ingress(key_rotation_grace_s=30) as client:
        org_id = await make_org(client)
        soon = datetime.now(UTC) + timedelta(seconds=1)
        expiring, _ = await new_key(client, org_id, expires_at=soon.isoformat())
        assert await _status(client, expiring) == (200, None)
        await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
        assert await _status(client, expiring) == (401, "expired_api_key")  # cached, and refused all the same

        revoked, revoked_id = await new_key(client, org_id)
        assert await _status(client, revoked) == (200, None)
        assert (await client.delete(f"/admin/keys/{revoked_id}", headers=MASTER_HEADERS)).status_code == 200
        assert await _status(client, revoked) == (401, "invalid_api_key")

        old, key_id = await new_key(client, org_id)
        rotated = await client.post(f"/admin/keys/{key_id}/rotate", headers=MASTER_HEADERS)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["key"]
        assert rotated.json()["record"]["id"] == key_id and new != old
        assert await _status(client, new) == (200, None) and await _status(client, old) == (200, None)  # in grace
        again = await client.post(f"/admin/keys/{key_id}/rotate", json={"grace_period_s": 0}, headers=MASTER_HEADERS)
        newest = again.json()["key"]
        assert await _status(client, new) == (401, "invalid_api_key")  # rotated out, no grace
        assert await _status(client, old) == (401, "invalid_api_key")  # no longer the previous secret at all
        assert await _status(client, newest) == (200, None)

        for malformed in ("sk-not-ours", "jg-", "jg-has spaces in it", "x" * 500):
            assert await _status(client, malformed) == (401, "invalid_api_key")


async def test_ip_allowlist_and_trusted_proxies(ingress: Ingress) -> None:
    async with ingress(peer="10.1.2.3") as inside:
        org_id = await make_org(inside)
        key, _ = await new_key(inside, org_id, allowed_ips=["10.0.0.0/8", "2001:db8::/32"])
        assert await _status(inside, key) == (200, None)
        assert await _status(inside, key, **{"x-forwarded-for": "192.0.2.1"}) == (200, None)  # no proxy trusted
    async with ingress(peer="192.0.2.7") as outside:
        assert await _status(outside, key) == (403, "ip_not_allowed")
        assert await _status(outside, key, **{"x-forwarded-for": "10.0.0.1"}) == (403, "ip_not_allowed")
    async with ingress(peer="192.0.2.7", trusted_proxies=["192.0.2.0/24"]) as proxied:
        assert await _status(proxied, key, **{"x-forwarded-for": "10.9.9.9"}) == (200, None)
        assert await _status(proxied, key, **{"x-forwarded-for": "10.9.9.9, 198.51.100.1"}) == (403, "ip_not_allowed")
        assert await _status(proxied, key, **{"x-forwarded-for": "198.51.100.1, 10.9.9.9, 192.0.2.9"}) == (200, None)


async def _models(client: httpx.AsyncClient, key: str) -> list[str]:
    return [m["id"] for m in (await client.get("/v1/models", headers=bearer(key))).json()["data"]]


async def _eventually(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the change did not reach the other replica"
        await asyncio.sleep(0.02)


async def test_changes_at_any_level_reach_another_replicas_cache(ingress: Ingress) -> None:
    async with ingress() as first, ingress(key_cache_ttl_s=3600) as second:
        org = await org_with_objects(first)
        key, key_id = await new_key(first, org["org"], team_id=org["team"])
        assert await _models(second, key) == ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]  # now cached there

        patched = await first.patch(f"/admin/keys/{key_id}", json={"models": ["gpt-4o", "gpt-4o-mini"]},
                                    headers=MASTER_HEADERS)
        assert patched.status_code == 200 and patched.json()["models"] == ["gpt-4o", "gpt-4o-mini"]

        async def key_level() -> bool:
            return await _models(second, key) == ["gpt-4o-mini", "gpt-4o"]
        await _eventually(key_level)

        await first.patch(f"/admin/orgs/{org['org']}", json={"models": ["gpt-4o"]}, headers=MASTER_HEADERS)

        async def org_level() -> bool:
            return await _models(second, key) == ["gpt-4o"]
        await _eventually(org_level)

        assert (await first.delete(f"/admin/teams/{org['team']}", headers=MASTER_HEADERS)).status_code == 200

        async def team_gone() -> bool:
            return (await _status(second, key))[0] == 401
        await _eventually(team_gone)
        assert (await first.get(f"/admin/teams/{org['team']}", headers=MASTER_HEADERS)).status_code == 404


async def test_last_used_is_recorded_off_the_hot_path(ingress: Ingress, engine: AsyncEngine) -> None:
    async with ingress(key_last_used_interval_s=0.1) as client:
        org_id = await make_org(client)
        key, key_id = await new_key(client, org_id)

        async def last_used() -> datetime | None:
            async with engine.connect() as conn:
                value: datetime | None = (await conn.execute(
                    select(api_keys.c.last_used_at).where(api_keys.c.id == key_id))).scalar()
            return value

        assert await last_used() is None
        before = datetime.now(UTC)
        for _ in range(5):
            assert (await client.get("/v1/models", headers=bearer(key))).status_code == 200

        async def recorded() -> bool:
            value = await last_used()
            return value is not None and value >= before
        await _eventually(recorded)
        shown = (await client.get(f"/admin/keys/{key_id}", headers=MASTER_HEADERS)).json()
        assert shown["last_used_at"] is not None


async def test_lists_are_pages(ingress: Ingress) -> None:
    async with ingress() as client:
        org_id = await make_org(client)
        made = [(await post(client, "/admin/teams", {"org_id": org_id, "name": f"t{i}"}))["id"] for i in range(5)]
        seen: list[str] = []
        params: dict[str, Any] = {"org_id": org_id, "limit": 2}
        while True:
            page = (await client.get("/admin/teams", params=params, headers=MASTER_HEADERS)).json()
            assert page["object"] == "list" and len(page["data"]) <= 2
            seen += [team["id"] for team in page["data"]]
            if not page["has_more"]:
                break
            params["after"] = page["last_id"]
        assert seen == sorted(made)
        bad = await client.get("/admin/teams", params={"limit": 0}, headers=MASTER_HEADERS)
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "limit"


async def test_patch_moves_a_key_within_what_the_caller_sees(ingress: Ingress) -> None:
    async with ingress() as client:
        a, b = await org_with_objects(client), await org_with_objects(client)
        key, key_id = await new_key(client, a["org"])
        moved = await client.patch(f"/admin/keys/{key_id}", json={"user_id": a["user"], "role": "viewer"},
                                   headers=MASTER_HEADERS)
        assert moved.status_code == 200, moved.text
        assert (moved.json()["user_id"], moved.json()["team_id"], moved.json()["role"]) == (a["user"], a["team"], "viewer")
        app = client._transport.app  # type: ignore[attr-defined]
        levels = (await app.state.ingress.keys.authenticate(key)).levels
        assert [level.id for level in levels] == [a["org"], a["team"], a["user"], key_id]

        wrong = await client.patch(f"/admin/keys/{key_id}", json={"user_id": b["user"]}, headers=MASTER_HEADERS)
        assert wrong.status_code == 422 and wrong.json()["error"]["param"] == "user_id"  # not of the key's org
        admin_a, _ = await new_key(client, a["org"], role="admin")
        away = await client.patch(f"/admin/keys/{key_id}", json={"org_id": b["org"], "user_id": None},
                                  headers=bearer(admin_a))
        assert away.status_code == 404 and away.json()["error"]["param"] == "org_id"
        service = await client.patch(f"/admin/keys/{key_id}", json={"team_id": a["team"], "user_id": None},
                                     headers=bearer(admin_a))
        assert (service.json()["team_id"], service.json()["user_id"]) == (a["team"], None)
        moved_away = await client.patch(f"/admin/keys/{key_id}", json={"org_id": b["org"], "team_id": None},
                                        headers=MASTER_HEADERS)
        assert moved_away.json()["org_id"] == b["org"]
        assert (await client.get(f"/admin/keys/{key_id}", headers=bearer(admin_a))).status_code == 404
