"""What the admin API's bodies and lists share: bodies read as the /v1 bodies are (size and
depth limits: 400), then validated strictly; a body that does not fit is 422 naming the
field (`param`) in OpenAI's error shape. The bodies themselves: shared/admin_bodies.py. Lists
are pages in OpenAI's list shape."""
from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from services.ingress.body import parse_json, read_body
from services.ingress.state import IngressState
from services.ingress.validation_errors import invalid_request
from shared.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

MAX_PAGE = 200


async def admin_body(request: Request, state: IngressState, model: type[M], *, optional: bool = False) -> M:
    """The body as `model`; `optional`: an empty body is the model's defaults."""
    raw = await read_body(request, state.settings.ingress.max_body_bytes)
    data = parse_json(raw, state.settings.ingress.max_json_depth) if raw.strip() or not optional else {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise unprocessable(invalid_request(exc.errors(include_url=False)[0], data)) from None


def unprocessable(error: InvalidRequest) -> InvalidRequest:
    return InvalidRequest(error.message, status=422, param=error.param, code=error.code)


class Page(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    last_id: str | None = None  # pass as `after` for the next page


def page_of(items: list[T], limit: int, id_of: Any) -> Page[T]:
    """`items` as fetched with limit + 1: one more than `limit` means there is a next page."""
    shown = items[:limit]
    return Page(data=shown, has_more=len(items) > limit, last_id=id_of(shown[-1]) if shown else None)
