"""Responses kept in Postgres, per org: what `GET /v1/responses/{id}` returns and what
`previous_response_id` continues (its conversation as Responses API items,
responses_api/conversation.py). A response of another org is not found, as if it never
was. Every query runs under the store timeout; an unreachable store is a 503."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingress.responses_api.conversation import items_of_messages
from shared.db.tables import responses
from shared.errors import GatewayError, ServiceUnavailable
from shared.events import Principal

ID_MAX = 64  # the `id` column's length


class ResponseNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = None  # OpenAI sends no code for an unknown response id


class StoredResponse(BaseModel):
    response: dict[str, Any]
    items: list[dict[str, Any]]  # the conversation without instructions, the answer included


def not_found(response_id: str, param: str | None = None) -> ResponseNotFound:
    return ResponseNotFound(f"Response with id '{response_id}' not found.", param=param)


class ResponseStore:
    def __init__(self, engine: AsyncEngine, timeout_s: float) -> None:
        self._engine = engine
        self._timeout_s = timeout_s

    @asynccontextmanager
    async def _guarded(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._timeout_s):
                yield
        except (TimeoutError, SQLAlchemyError, OSError):
            raise ServiceUnavailable("The response store is unreachable; try again shortly.", retry_after="1") from None

    async def save(self, principal: Principal, response: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """A `response` object (its `id` and `model` as the client saw them) and its conversation."""
        response_id, model = response.get("id"), response.get("model")
        if not isinstance(response_id, str) or not 0 < len(response_id) <= ID_MAX or not isinstance(model, str):
            raise GatewayError("The response has no id the store can keep.", code="response_not_storable")
        async with self._guarded(), self._engine.begin() as conn:
            await conn.execute(responses.insert().values(
                id=response_id, org_id=principal.org_id, key_id=principal.key_id, model=model[:200],
                response=response, messages=[], conversation=items))

    async def get(self, principal: Principal, response_id: str, param: str | None = None) -> StoredResponse:
        async with self._guarded(), self._engine.connect() as conn:
            row = (await conn.execute(select(responses.c.response, responses.c.conversation, responses.c.messages).where(
                responses.c.id == response_id, responses.c.org_id == principal.org_id))).first()
        if row is None:
            raise not_found(response_id, param)
        items = row.conversation if row.conversation is not None else items_of_messages(row.messages)
        return StoredResponse(response=row.response, items=items)

    async def delete(self, principal: Principal, response_id: str) -> None:
        async with self._guarded(), self._engine.begin() as conn:
            result = await conn.execute(delete(responses).where(
                responses.c.id == response_id, responses.c.org_id == principal.org_id))
        if result.rowcount == 0:
            raise not_found(response_id)
