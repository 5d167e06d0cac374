"""OpenAI-compatible presets: `type:` gives the base URL and the upstream's quirks, the entry
overrides them, and the quirks shape what goes on the wire."""
from __future__ import annotations

import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers import parse_provider
from services.router.providers.base import ChatCall
from services.router.providers.openai import OpenAIConfig, OpenAIProvider
from services.router.providers.openai.presets import PRESETS
from shared.config import ProviderEntry
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi", "name": "alice"}]


def preset(type_: str, **fields: object) -> OpenAIConfig:
    config = parse_provider(ProviderEntry.model_validate({"name": "up", "type": type_, **fields}))
    assert isinstance(config, OpenAIConfig)
    return config


@pytest.mark.parametrize(("type_", "base_url"), [
    ("openai", "https://api.openai.com/v1"), ("groq", "https://api.groq.com/openai/v1"), ("xai", "https://api.x.ai/v1"),
    ("mistral", "https://api.mistral.ai/v1"), ("deepseek", "https://api.deepseek.com/v1"),
    ("openrouter", "https://openrouter.ai/api/v1"), ("together", "https://api.together.xyz/v1"),
    ("fireworks", "https://api.fireworks.ai/inference/v1"), ("ollama", "http://127.0.0.1:11434/v1"),
    ("vllm", "http://127.0.0.1:8000/v1"), ("lmstudio", "http://127.0.0.1:1234/v1"),
])
def test_each_preset_brings_its_base_url(type_: str, base_url: str) -> None:
    key = {} if not PRESETS[type_].needs_key else {"api_key": "env:UP_KEY"}
    assert preset(type_, **key).base_url == base_url


def test_the_entry_overrides_the_preset() -> None:
    config = preset("mistral", base_url="http://127.0.0.1:9/v1", stream_usage=True, drop_fields=["seed"])
    assert config.base_url == "http://127.0.0.1:9/v1" and config.stream_usage is True
    assert config.drop_fields == frozenset({"seed"})


def test_a_hosted_preset_at_its_own_url_needs_a_key_a_local_one_does_not() -> None:
    with pytest.raises(ValueError, match="api_key"):
        preset("groq")
    assert preset("ollama").api_key is None
    assert preset("groq", base_url="http://127.0.0.1:9/v1").api_key is None  # a proxy of one's own


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown type 'groqq'"):
        preset("groqq")


async def test_groq_never_receives_the_fields_it_refuses(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    fake.clear()
    adapter = OpenAIProvider(preset("groq", base_url=fake.base_url), http)
    body = {"model": "gw", "messages": MESSAGES, "logprobs": True, "top_logprobs": 2, "logit_bias": {"1": 2},
            "temperature": 0.2}
    await adapter.chat(ChatCall(body, "gpt-4o-mini"))
    async for _ in adapter.chat_stream(ChatCall(body, "gpt-4o-mini")):
        pass
    sent = [r.json for r in fake.requests]
    assert len(sent) == 2
    for wire in sent:
        assert not {"logprobs", "top_logprobs", "logit_bias"} & set(wire)
        assert wire["temperature"] == 0.2 and wire["messages"] == [{"role": "user", "content": "hi"}]
    assert body["messages"] == MESSAGES  # the client's body itself is untouched


async def test_mistral_streams_without_stream_options(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    adapter = OpenAIProvider(preset("mistral", base_url=fake.base_url, api_key=None), http)
    chunks = [c async for c in adapter.chat_stream(ChatCall(
        {"model": "gw", "messages": MESSAGES, "stream_options": {"include_usage": True}}, "gpt-4o-mini"))]
    assert chunks
    wire = fake.requests[-1].json
    assert wire["stream"] is True and "stream_options" not in wire
    assert wire["messages"] == MESSAGES  # mistral keeps `name`


async def test_openai_keeps_every_field(fake: FakeOpenAI, http: UpstreamHttp) -> None:
    adapter = OpenAIProvider(preset("openai", base_url=fake.base_url), http)
    await adapter.chat(ChatCall({"model": "gw", "messages": MESSAGES, "logprobs": True}, "gpt-4o-mini"))
    wire = fake.requests[-1].json
    assert wire["logprobs"] is True and wire["messages"] == MESSAGES
