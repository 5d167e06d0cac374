"""The response store on the session's real Postgres: per org, 404 for the rest, 503 when unreachable."""
from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jetgate.embedded.ports import free_port
from services.ingress.responses_api.objects import OutputMessage, OutputTextPart, ResponseObject
from services.ingress.responses_api.store import ResponseNotFound, ResponseStore
from shared.db.engine import make_engine
from shared.errors import ServiceUnavailable
from shared.events import Principal

MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]


def answered() -> ResponseObject:
    return ResponseObject(model="m", status="completed",
                          output=[OutputMessage(status="completed", content=[OutputTextPart(text="Hello")])])


async def test_a_saved_response_comes_back_for_its_org_only(engine: AsyncEngine, org_id: str) -> None:
    store = ResponseStore(engine, timeout_s=5)
    mine, other = Principal(key_id="k1", org_id=org_id), Principal(key_id="k2", org_id=org_id + "-other")
    response = answered()
    await store.save(mine, response, MESSAGES)
    stored = await store.get(mine, response.id)
    assert stored.response == response.dump() and stored.messages == MESSAGES
    with pytest.raises(ResponseNotFound) as caught:
        await store.get(other, response.id, "previous_response_id")
    error = caught.value
    assert (error.status, error.code, error.param) == (404, None, "previous_response_id")
    assert response.id in error.message
    with pytest.raises(ResponseNotFound):
        await store.delete(other, response.id)  # nor can another org delete it
    await store.get(mine, response.id)


async def test_a_deleted_response_is_gone(engine: AsyncEngine, org_id: str) -> None:
    store = ResponseStore(engine, timeout_s=5)
    principal = Principal(key_id="k", org_id=org_id)
    response = answered()
    await store.save(principal, response, MESSAGES)
    await store.delete(principal, response.id)
    with pytest.raises(ResponseNotFound):
        await store.get(principal, response.id)
    with pytest.raises(ResponseNotFound):
        await store.delete(principal, response.id)


async def test_an_unreachable_store_is_a_503() -> None:
    engine = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    try:
        store = ResponseStore(engine, timeout_s=2)
        with pytest.raises(ServiceUnavailable):
            await store.get(Principal(key_id="k"), "resp_x")
    finally:
        await engine.dispose()
