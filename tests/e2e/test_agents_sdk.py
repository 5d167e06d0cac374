"""The OpenAI Agents SDK's default model (the Responses API) through the gateway: an agent
with a function tool runs to its answer, plain and streamed, tracing off."""
from __future__ import annotations

import asyncio
import json

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from services.router.providers.openai import payloads
from tests.e2e.gateway import Gateway
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    set_tracing_disabled(True)  # no traces sent to OpenAI from the tests
    return gateway.create_key("agents-sdk")[0]


def weather_agent(gateway: Gateway, key: str, asked: list[str]) -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"It is 21 C and sunny in {city}."

    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    return Agent(name="weather", instructions="Answer weather questions with the tool.", tools=[get_weather],
                 model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client))


def tool_turn(fake: FakeOpenAI, city: str) -> list[dict[str, object]]:
    """The messages of the chat request that carried the tool's result back to the model."""
    return [r.json["messages"] for r in fake.requests if r.path == "/v1/chat/completions" and r.json
            and f"sunny in {city}" in json.dumps(r.json.get("messages"))][-1]


def test_an_agent_calls_its_tool_and_answers(gateway: Gateway, key: str, fake_openai: FakeOpenAI) -> None:
    asked: list[str] = []
    result = asyncio.run(Runner.run(weather_agent(gateway, key, asked), "What is the weather in Paris?"))
    assert asked == ["Paris"]  # the model's function call reached the tool, arguments intact
    assert result.final_output == payloads.REPLY_TEXT
    messages = tool_turn(fake_openai, "Paris")
    assert messages[0] == {"role": "system", "content": "Answer weather questions with the tool."}
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "get_weather"  # type: ignore[index]
    assert messages[-1]["role"] == "tool" and messages[-1]["content"] == "It is 21 C and sunny in Paris."
    assert messages[-1]["tool_call_id"] == messages[-2]["tool_calls"][0]["id"]  # type: ignore[index]


def test_a_streamed_agent_run(gateway: Gateway, key: str) -> None:
    asked: list[str] = []

    async def run() -> tuple[str, list[str]]:
        streamed = Runner.run_streamed(weather_agent(gateway, key, asked), "What is the weather in Paris?")
        kinds = [event.type async for event in streamed.stream_events()]
        return str(streamed.final_output), kinds

    final, kinds = asyncio.run(run())
    assert asked == ["Paris"] and final == payloads.REPLY_TEXT
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
