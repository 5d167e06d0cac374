"""The response store on the session's real Postgres: per org, 404 for the rest, 503 when unreachable."""
from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jetgate.embedded.ports import free_port
from services.ingress.responses_api.store import ResponseNotFound, ResponseStore
from shared.db.engine import make_engine
from shared.db.tables import responses
from shared.errors import GatewayError, ServiceUnavailable
from shared.events import Principal
from shared.openai_responses import ResponsesRequest

ITEMS = [{"role": "user", "content": "hi"},
         {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}]


class Answer(dict[str, Any]):
    @property
    def id(self) -> str:
        return str(self["id"])


def answered() -> Answer:
    return Answer(id="resp_" + secrets.token_hex(24), object="response", model="m", status="completed",
                  output=[ITEMS[1]])


async def test_a_saved_response_comes_back_for_its_org_only(engine: AsyncEngine, org_id: str) -> None:
    store = ResponseStore(engine, timeout_s=5)
    mine, other = Principal(key_id="k1", org_id=org_id), Principal(key_id="k2", org_id=org_id + "-other")
    response = answered()
    await store.save(mine, response, ITEMS)
    stored = await store.get(mine, response.id)
    assert stored.response == response and stored.items == ITEMS
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
    await store.save(principal, response, ITEMS)
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


async def test_a_row_stored_as_chat_messages_is_read_as_items(engine: AsyncEngine, org_id: str) -> None:
    """Rows from before migration 0006 hold their conversation as chat messages."""
    principal = Principal(key_id="k", org_id=org_id)
    response_id = "resp_" + secrets.token_hex(24)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    async with engine.begin() as conn:
        await conn.execute(responses.insert().values(
            id=response_id, org_id=org_id, key_id="k", model="m", response={"id": response_id}, messages=[
                {"role": "user", "content": "Weather?"}, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
                {"role": "assistant", "content": "It is 21 C."}]))
    stored = await ResponseStore(engine, timeout_s=5).get(principal, response_id)
    assert stored.items == [
        {"type": "message", "role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "21 C"},
        {"type": "message", "role": "assistant", "content": "It is 21 C."}]
    request = ResponsesRequest.model_validate({"model": "m", "input": stored.items})  # items the API takes
    assert request.input is not None and len(request.input) == 4


async def test_a_response_without_an_id_is_not_stored(engine: AsyncEngine, org_id: str) -> None:
    with pytest.raises(GatewayError):
        await ResponseStore(engine, timeout_s=5).save(Principal(key_id="k", org_id=org_id), {"model": "m"}, ITEMS)
