"""What the admin API's bodies and lists share: bodies read as the /v1 bodies are (size and
depth limits: 400), then validated strictly; a body that does not fit is 422 naming the
field (`param`) in OpenAI's error shape. Lists are pages in OpenAI's list shape."""
from __future__ import annotations

import ipaddress
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from services.ingress.body import parse_json, read_body
from services.ingress.state import IngressState
from services.ingress.validation_errors import invalid_request
from shared.errors import InvalidRequest
from shared.tenancy import BudgetDuration, Role, Scope

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

MAX_PAGE = 200


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
