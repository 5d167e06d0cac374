"""Reading and validating request bodies, once, at the ingress: a size limit (413), a depth
limit checked before anything recurses, then the typed model; every refusal is a 400 in
OpenAI's shape naming the parameter as OpenAI writes it (`messages[0].role`)."""
from __future__ import annotations

import re
from itertools import accumulate
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from services.ingress.validation_errors import invalid_request
from shared.errors import InvalidRequest, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_DEPTH = 64


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


_STRUCTURE = b'[]{}"'
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in _STRUCTURE)
_STRINGS = re.compile(rb'"[^"]*"')
_STEP = [1 if c in b"[{" else -1 if c in b"]}" else 0 for c in range(256)]


def _deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the containers of `raw` (valid JSON) nest deeper than `limit`, the body
    object being level 1. Read from the bytes at C speed: escaped backslashes and quotes
    go first, then everything but brackets and quotes, then the strings (brackets inside
    them do not nest); only the brackets left are counted in Python."""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in raw else raw
    brackets = _STRINGS.sub(b"", unescaped.translate(None, _NOT_STRUCTURE))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


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
    if raw.count(b"{") + raw.count(b"[") > max_depth and _deeper_than(raw, max_depth):
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
