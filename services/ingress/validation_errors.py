"""A pydantic validation error, told the way OpenAI tells it: the parameter path as OpenAI
writes it (`messages[0].content[1].image_url.url`), OpenAI's wording and its codes
(`invalid_type`, `invalid_value`, `missing_required_parameter`, `decimal_above_max_value`,
`empty_array`, ...)."""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic_core import ErrorDetails

from shared.errors import InvalidRequest

_MISSING = object()

_EXPECTED = {
    "string_type": "a string", "bool_type": "a boolean", "int_type": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "list_type": "an array", "dict_type": "an object", "model_type": "an object",
    "model_attributes_type": "an object", "none_required": "null",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def param_path(loc: Sequence[int | str], data: Any = _MISSING, *, missing: bool = False) -> str | None:
    """OpenAI's spelling of a parameter path. With the input at hand, steps that are not in
    it are a union member's label (`array`, `user`, `text`), not part of the path; a missing
    field is the last step. Without the input every step counts."""
    out = ""
    node = data
    for i, step in enumerate(loc):
        known = node is not _MISSING
        if isinstance(step, int) and (not known or isinstance(node, list)):
            out += f"[{step}]"
            node = node[step] if known and -len(node) <= step < len(node) else _MISSING
        elif isinstance(step, str) and (not known or (isinstance(node, dict)
                                                      and (step in node or (missing and i == len(loc) - 1)))):
            out += f".{step}" if out else step
            node = node.get(step, _MISSING) if known else _MISSING
    return out or None


def _short(value: Any, limit: int = 64) -> str:
    """A value echoed in a message, cut short: the message also lands in the audit log."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _supported(expected: str) -> str:
    """`'a', 'b', 'c'` (pydantic's list) → `'a', 'b', and 'c'` (OpenAI's)."""
    items = [part.strip() for part in expected.replace(" or ", ", ").split(",") if part.strip()]
    if len(items) < 3:
        return " and ".join(items)
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def invalid_request(error: ErrorDetails, data: Any = _MISSING) -> InvalidRequest:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    missing = kind == "missing"
    param = param_path(error["loc"], data, missing=missing)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = str(ctx.get("discriminator", "type")).strip("'")
        if not field.endswith("()"):  # a callable discriminator (`_item_type()`) names no parameter
            param = f"{param}.{field}" if param else field
        if kind == "union_tag_not_found":
            missing = True
        else:
            return InvalidRequest(f"Invalid value: '{_short(ctx.get('tag'))}'. Supported values are: "
                                  f"{_supported(str(ctx.get('expected_tags', '')))}.", param=param, code="invalid_value")
    name = f"'{param}'" if param else "the request body"
    if missing:
        return InvalidRequest(f"Missing required parameter: {name}.", param=param, code="missing_required_parameter")
    if kind == "extra_forbidden":  # only the gateway's own (admin) bodies refuse unknown fields
        return InvalidRequest(f"Unknown parameter: {name}.", param=param, code="unknown_parameter")
    if kind == "invalid_type":  # by_json_type(...): the message names what was expected
        return _typed(param, name, error["msg"], value)
    if kind in _EXPECTED:
        return _typed(param, name, f"expected {_EXPECTED[kind]}", value)
    if kind == "literal_error":
        return InvalidRequest(f"Invalid value: '{_short(value)}'. Supported values are: {_supported(str(ctx.get('expected')))}.",
                              param=param, code="invalid_value")
    bound = _bound(kind, ctx, value, name)
    if bound is not None:
        message, code = bound
        return InvalidRequest(message, param=param, code=code)
    detail = error["msg"].removeprefix("Value error, ")
    return InvalidRequest(f"Invalid value for {name}: {detail}.", param=param, code="invalid_value")


def _typed(param: str | None, name: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for {name}: {expected}, but got {_kind(value)} instead.",
                          param=param, code="invalid_type")


def _bound(kind: str, ctx: dict[str, Any], value: Any, name: str) -> tuple[str, str] | None:
    """Ranges and lengths, in OpenAI's words; None for any other kind of error."""
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        below = kind.startswith("greater")
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        limit = next(iter(ctx.values()), "")
        number = "decimal" if isinstance(limit, float | Decimal) else "integer"  # the parameter's type, as OpenAI names it
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        side = "below minimum" if below else "above maximum"
        return (f"Invalid {name}: {number} {side} value. Expected a value {op} {limit}, but got {_short(value)} instead.",
                f"{number}_{'below_min' if below else 'above_max'}_value")
    if kind in ("too_short", "too_long"):
        length = ctx.get("actual_length")
        if length is None:
            length = len(value) if isinstance(value, (list, dict, str)) else 0
        is_object = ctx.get("field_type") == "Dictionary"
        if isinstance(value, str):  # a length limit on an optional string field
            return _string_bound("string_" + kind, ctx, value, name)
        if kind == "too_short" and length == 0 and not is_object:
            return (f"Invalid {name}: empty array. Expected an array with minimum length {ctx.get('min_length')}, "
                    "but got an empty array instead.", "empty_array")
        if is_object:
            return (f"Invalid {name}: too many properties. Expected an object with at most {ctx.get('max_length')} "
                    f"properties, but got {length} instead.", "object_above_max_properties")
        if kind == "too_short":
            return (f"Invalid {name}: array too short. Expected an array with minimum length {ctx.get('min_length')}, "
                    f"but got an array with length {length} instead.", "array_below_min_length")
        return (f"Invalid {name}: array too long. Expected an array with maximum length {ctx.get('max_length')}, "
                f"but got an array with length {length} instead.", "array_above_max_length")
    if kind in ("string_too_short", "string_too_long"):
        return _string_bound(kind, ctx, value, name)
    if kind == "string_pattern_mismatch":
        return (f"Invalid {name}: string does not match pattern. Expected a string that matches the pattern "
                f"'{ctx.get('pattern')}'.", "invalid_value")
    return None


def _string_bound(kind: str, ctx: dict[str, Any], value: Any, name: str) -> tuple[str, str]:
    if kind == "string_too_short":
        if value == "":
            return (f"Invalid {name}: empty string. Expected a string with minimum length {ctx.get('min_length')}, "
                    "but got an empty string instead.", "empty_string")
        return (f"Invalid {name}: string too short. Expected a string with minimum length {ctx.get('min_length')}, "
                f"but got a string with length {len(str(value))} instead.", "string_below_min_length")
    return (f"Invalid {name}: string too long. Expected a string with maximum length {ctx.get('max_length')}, "
            f"but got a string with length {len(str(value))} instead.", "string_above_max_length")
