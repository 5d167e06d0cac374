"""Pydantic's errors told in OpenAI's words: parameter paths and the admin bodies."""
from __future__ import annotations

import pytest

from services.ingress.body import parse_body
from services.ingress.routes.admin import CreateKey
from services.ingress.validation_errors import param_path
from shared.errors import InvalidRequest


@pytest.mark.parametrize(("loc", "data", "path"), [
    (("messages", 0, "user", "content", "array", 2, "text", "text"),
     {"messages": [{"role": "user", "content": [{}, {}, {"type": "text", "text": 1}]}]}, "messages[0].content[2].text"),
    (("logit_bias", "50256"), {"logit_bias": {"50256": 500}}, "logit_bias.50256"),
    ((), {}, None),
])
def test_union_labels_are_not_part_of_the_path(loc: tuple[int | str, ...], data: object, path: str | None) -> None:
    assert param_path(loc, data) == path


def test_without_the_input_every_step_counts() -> None:
    assert param_path(("org_id",)) == "org_id" and param_path(("items", 3, "name")) == "items[3].name"


def test_a_missing_field_is_the_last_step() -> None:
    assert param_path(("messages", 0, "tool", "tool_call_id"), {"messages": [{"role": "tool"}]},
                      missing=True) == "messages[0].tool_call_id"


@pytest.mark.parametrize(("body", "param", "code"), [
    (b'{"name": "a\\u0000b"}', "name", "invalid_value"),
    (b'{"name": "' + b"n" * 201 + b'"}', "name", "string_above_max_length"),
    (b'{"name": "n", "team_id": "a.b"}', "team_id", "invalid_value"),
    (b'{"name": "n", "is_admin": "yes"}', "is_admin", "invalid_type"),
    (b'{"name": "n", "role": "emperor"}', "role", "invalid_value"),
    (b'{"name": "n", "scopes": ["chat", "sudo"]}', "scopes[1]", "invalid_value"),
    (b'{"name": "n", "allowed_ips": ["10.0.0.0/33"]}', "allowed_ips[0]", "invalid_value"),
    (b'{"name": "n", "budget_duration": "2w"}', "budget_duration", "invalid_value"),
    (b'{"name": "n", "max_budget": -1}', "max_budget", "decimal_below_min_value"),
    (b'{"name": "n", "models": [""]}', "models[0]", "empty_string"),
    (b'{"name": "n", "admin": true}', "admin", "unknown_parameter"),
])
def test_admin_bodies_are_strict_and_storable(body: bytes, param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_body(body, CreateKey)
    assert (caught.value.param, caught.value.code) == (param, code)
