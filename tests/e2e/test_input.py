"""Strict input through the real gateway: the official SDK hears OpenAI's 400 with the
parameter named as OpenAI names it, deep JSON and oversized headers get a clear 4xx, and
every refused request still leaves its audit trail."""
from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI

USER = {"role": "user", "content": "Strict input, please"}


@pytest.fixture(scope="module")
def key_and_id(gateway: Gateway) -> tuple[str, str]:
    return gateway.create_key("strict-input")


@pytest.fixture(scope="module")
def client(gateway: Gateway, key_and_id: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key_and_id[0], max_retries=0)


@pytest.mark.parametrize(("fields", "param", "code"), [
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [USER], "extra_body": {"stream": "yes"}}, "stream", "invalid_type"),
    ({"messages": [USER], "temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ({"messages": [USER, {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[1].content[0].image_url.url", "missing_required_parameter"),
    ({"messages": [USER], "stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
    ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id", "missing_required_parameter"),
])
def test_the_sdk_gets_bad_request_naming_the_param(client: openai.OpenAI, fields: dict[str, Any], param: str,
                                                   code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", **fields)
    assert caught.value.status_code == 400
    assert (caught.value.param, caught.value.code, caught.value.type) == (param, code, "invalid_request_error")


def test_embeddings_input_is_checked_like_openai(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input=[])
    assert (caught.value.param, caught.value.code) == ("input", "empty_array")
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input=[[1, 2], ["x"]])  # type: ignore[list-item]
    assert caught.value.param == "input[1][0]"


def test_valid_bodies_with_unknown_fields_reach_the_upstream_untouched(client: openai.OpenAI,
                                                                      fake_openai: FakeOpenAI) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "developer", "content": "terse"}, USER], temperature=0, n=1, seed=1,
        stop="END", response_format={"type": "json_object"}, extra_body={"x_vendor": {"keep": [1, 2]}})
    sent = fake_openai.requests[-1].json
    assert sent["x_vendor"] == {"keep": [1, 2]} and sent["stop"] == "END"


def nested(levels: int) -> bytes:
    inner = b'{"a":' * levels + b"1" + b"}" * levels
    return b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "x": ' + inner + b"}"


def test_deep_json_is_a_400_and_its_audit_trail_is_complete(gateway: Gateway, key_and_id: tuple[str, str]) -> None:
    key, key_id = key_and_id
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        deep = http.post("/v1/chat/completions", content=nested(255), headers={"content-type": "application/json"})
        wizard = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini",
                                                          "messages": [{"role": "wizard", "content": "x"}]})
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "json_too_deep"
    assert wizard.status_code == 400
    ids = {deep.headers["x-request-id"]: "json_too_deep", wizard.headers["x-request-id"]: "invalid_value"}

    def trail() -> list[Any]:
        rows = pg_rows(gateway, "SELECT request_id, type, data FROM audit_log WHERE key_id = $1 AND request_id = ANY($2)",
                       key_id, list(ids))
        return rows if len(rows) >= 2 else []

    rows = wait_for(trail)
    assert sorted((r["request_id"], r["type"]) for r in rows) == sorted((i, "request.failed") for i in ids)
    for row in rows:
        data = json.loads(row["data"])
        assert (data["status_code"], data["error_code"]) == (400, ids[row["request_id"]])


def test_too_many_or_too_large_headers_are_431_in_openais_shape(gateway: Gateway, key_and_id: tuple[str, str]) -> None:
    auth = {"authorization": f"Bearer {key_and_id[0]}"}
    many = httpx.get(gateway.url + "/v1/models", headers={**auth, **{f"x-h{i}": "v" for i in range(200)}})
    large = httpx.get(gateway.url + "/v1/models", headers={**auth, "x-big": "v" * 40_000})
    for response in (many, large):
        assert response.status_code == 431
        assert response.json()["error"]["code"] == "request_headers_too_large"
    assert httpx.get(gateway.url + "/v1/models", headers=auth).status_code == 200
