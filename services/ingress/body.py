"""Reading and validating request bodies, once, at the ingress: a size limit (413), a depth
limit checked before anything recurses, then the typed model; every refusal is a 400 in
OpenAI's shape naming the parameter as OpenAI writes it (`messages[0].role`)."""
from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from services.ingress.validation_errors import invalid_request
from shared.errors import InvalidRequest, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_DEPTH = 64
_CONTAINERS = frozenset((dict, list))


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether containers nest deeper than `limit` (the body object is level 1). Walks
    without recursion; a container holding only scalars (a token array, a list of
    strings) is passed over at C speed."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        values = node.values() if type(node) is dict else node
        if not _CONTAINERS.isdisjoint(map(type, values)):
            stack.extend((child, depth + 1) for child in values if type(child) is dict or type(child) is list)
    return False


def _too_deep(limit: int) -> InvalidRequest:
    return InvalidRequest(f"The JSON body is nested more than {limit} levels deep.", code="json_too_deep")


def parse_json(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """The body as a JSON object, refused if it is not one or nests deeper than `max_depth`."""
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):  # orjson's own limit (1,024), far above ours
            raise _too_deep(max_depth) from None
        raise InvalidRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    # fewer brackets than the limit cannot nest deeper: most bodies skip the walk
    if raw.count(b"{") + raw.count(b"[") > max_depth and _deeper_than(data, max_depth):
        raise _too_deep(max_depth)
    return data


def parse_body(raw: bytes, model: type[M], max_depth: int = DEFAULT_MAX_DEPTH) -> M:
    """The body validated once, here; what the workers get is `raw`, unchanged."""
    data = parse_json(raw, max_depth)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first: ErrorDetails = exc.errors(include_url=False)[0]
        raise invalid_request(first, data) from None
