"""The Responses API (`/v1/responses`) through the gateway with the official openai SDK:
plain, streamed, stored and chained, deleted, function tools, errors; usage and audit as
for chat completions."""
from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.openai_upstream import RecordedRequest as Recorded

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}


@pytest.fixture(scope="module")
def keyed(gateway: Gateway) -> tuple[str, str]:
    return gateway.create_key("responses-tests", org_id="org-responses")


@pytest.fixture(scope="module")
def client(gateway: Gateway, keyed: tuple[str, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=keyed[0], max_retries=0)


def sent_with(fake: FakeOpenAI, marker: str) -> Recorded:
    """The last chat request the fake received whose messages mention `marker`."""
    return [r for r in fake.requests if r.path == "/v1/chat/completions" and r.json
            and marker in json.dumps(r.json.get("messages"))][-1]


def test_a_plain_response(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="Say hello, plain response",
                                       instructions="You are terse.", temperature=0.3, max_output_tokens=64)
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert response.output_text == "Hello! This is the fake OpenAI upstream answering."
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.model == "gpt-4o-mini" and response.instructions == "You are terse."
    assert response.usage is not None and response.usage.output_tokens == 10
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    sent = sent_with(fake_openai, "plain response").json
    assert sent["messages"] == [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "Say hello, plain response"}]
    assert sent["temperature"] == 0.3 and sent["max_completion_tokens"] == 64


def test_a_streamed_response_with_the_sdk_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="Stream me a hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text == "Hello! This is the fake OpenAI upstream answering."
    assert final.usage is not None and final.usage.output_tokens == 10 and final.usage.input_tokens > 0


def test_create_with_stream_true_sends_event_lines(gateway: Gateway, keyed: tuple[str, str],
                                                   client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt-4o-mini", input="Stream raw", stream=True))
    completed = events[-1]
    assert completed.type == "response.completed" and completed.response.output_text
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {keyed[0]}"}) as http:
        raw = http.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "Stream raw", "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in raw.text.split("\n\n") if b]
    assert blocks[0].startswith("event: response.created\ndata: {")
    assert all(json.loads(b.split("\ndata: ", 1)[1])["type"] == b.split("\n")[0][len("event: "):] for b in blocks)
    assert "[DONE]" not in raw.text


def test_a_stored_response_is_retrieved_chained_and_deleted(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="My name is Ada, remember it",
                                    instructions="First instructions")
    assert client.responses.retrieve(first.id).output_text == first.output_text
    second = client.responses.create(model="gpt-4o-mini", input="What is my name, chained?",
                                     previous_response_id=first.id, instructions="Second instructions")
    assert second.previous_response_id == first.id
    sent = sent_with(fake_openai, "chained?").json["messages"]
    assert sent == [{"role": "system", "content": "Second instructions"},  # earlier instructions are not carried
                    {"role": "user", "content": "My name is Ada, remember it"},
                    {"role": "assistant", "content": first.output_text},
                    {"role": "user", "content": "What is my name, chained?"}]
    third = client.responses.create(model="gpt-4o-mini", input="Third turn, chained twice", stream=True,
                                    previous_response_id=second.id)
    final = list(third)[-1]
    assert final.type == "response.completed"
    assert len(sent_with(fake_openai, "chained twice").json["messages"]) == 5
    streamed = client.responses.retrieve(final.response.id)  # a streamed response is stored too
    assert streamed.output_text == final.response.output_text and streamed.status == "completed"

    deleted = client.responses.delete(first.id)
    assert deleted is None  # the SDK returns nothing; the body is checked below
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(first.id)
    assert first.id in caught.value.message
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-4o-mini", input="again", previous_response_id=first.id)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_delete_answers_the_deleted_object(gateway: Gateway, keyed: tuple[str, str], client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="delete me")
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {keyed[0]}"}) as http:
        deleted = http.delete(f"/v1/responses/{response.id}")
        assert deleted.json() == {"id": response.id, "object": "response", "deleted": True}
        again = http.delete(f"/v1/responses/{response.id}")
        assert again.status_code == 404 and again.json()["error"]["type"] == "invalid_request_error"


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="forget me", store=False)
    assert response.store is False and response.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_another_orgs_response_is_404(gateway: Gateway, client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="private to my org")
    other_key, _ = gateway.create_key("responses-other-org", org_id="org-elsewhere")
    other = openai.OpenAI(base_url=gateway.url + "/v1", api_key=other_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="gpt-4o-mini", input="steal", previous_response_id=response.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(response.id)
    assert client.responses.retrieve(response.id).id == response.id


def test_a_function_tool_round_trip(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    asked = client.responses.create(model="gpt-4o-mini", input="Weather in Paris? round trip", tools=[WEATHER])
    call = asked.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"} and call.call_id.startswith("call_")
    tools_sent = sent_with(fake_openai, "round trip").json["tools"]
    assert tools_sent[0]["function"]["name"] == "get_weather" and tools_sent[0]["function"]["strict"] is True

    answered = client.responses.create(model="gpt-4o-mini", previous_response_id=asked.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature_c": 21}'}])
    assert answered.output_text
    sent = sent_with(fake_openai, "temperature_c").json["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == call.call_id and sent[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": '{"temperature_c": 21}'}


def test_a_streamed_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="Weather streamed", tools=[WEATHER],
                                 tool_choice={"type": "function", "name": "get_weather"}) as stream:
        events = list(stream)
        final = stream.get_final_response()
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Paris"}
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == arguments
    assert final.output[0].type == "function_call" and final.output[0].arguments == arguments


def test_structured_output_is_sent_as_response_format(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    client.responses.create(model="gpt-4o-mini", input="structured please",
                            text={"format": {"type": "json_schema", "name": "person", "schema": schema}})
    assert sent_with(fake_openai, "structured please").json["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema}}


def test_errors_are_openai_shaped(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[{"type": "web_search_preview"}])
    assert caught.value.body["param"] == "tools[0].type"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="this is TOP SECRET")
    assert caught.value.code == "guardrail_blocked"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-9-imaginary", input="x")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="always-500", input="x")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_does_not_exist")


def test_usage_and_audit_are_recorded_as_for_chat(gateway: Gateway) -> None:
    key, key_id = gateway.create_key("responses-accounting")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    raw = client.responses.with_raw_response.create(model="gpt-4o-mini", input="count this response")
    response = raw.parse()
    request_id = raw.headers["x-request-id"]
    rows = wait_for(lambda: pg_rows(gateway, "SELECT * FROM spend_ledger WHERE key_id = $1", key_id))
    assert len(rows) == 1 and rows[0]["request_id"] == request_id
    assert response.usage is not None
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (response.usage.input_tokens,
                                                                       response.usage.output_tokens)

    def audit() -> list[Any]:
        found = pg_rows(gateway, "SELECT type, data FROM audit_log WHERE request_id = $1", request_id)
        return found if len(found) >= 2 else []

    found = wait_for(audit)
    assert sorted(r["type"] for r in found) == ["request.completed", "request.received"]
    assert all(json.loads(r["data"])["path"] == "/v1/responses" for r in found)
