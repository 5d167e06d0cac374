"""OpenAI's other endpoints through the whole gateway with the official SDK, against the fake
OpenAI upstream: legacy completions (plain, streamed), moderations, image generation,
speech and transcriptions; usage recorded; a model of another mode, or a provider without
the endpoint, refused with a clear 400."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from services.router.providers.openai import endpoint_payloads, payloads
from tests.e2e.conftest import PRICE_IN, PRICE_OUT, UPSTREAM_KEY, charged, pg_rows
from tests.e2e.gateway import Gateway
from tests.fakes.openai_upstream import FakeOpenAI

PROMPT = "Say this is a test"


def _cost(prompt: int, completion: int) -> Decimal:
    return (PRICE_IN * prompt + PRICE_OUT * completion) / 1_000_000


def _ledger(gateway: Gateway, key_id: str) -> list[Any]:
    return pg_rows(gateway, "SELECT model, provider, prompt_tokens, completion_tokens, cost, status FROM spend_ledger "
                            "WHERE key_id = $1 ORDER BY time", key_id)


def _sdk(gateway: Gateway, name: str) -> tuple[openai.OpenAI, str]:
    key, key_id = gateway.create_key(name)
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0), key_id


def test_completions_plain_and_streamed(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    client, key_id = _sdk(gateway, "endpoints-completions")
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT, max_tokens=7, echo=False)
    assert completion.object == "text_completion" and completion.choices[0].text == payloads.REPLY_TEXT
    assert completion.usage is not None and completion.usage.prompt_tokens == len(PROMPT.split())
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/completions" and sent.bearer == UPSTREAM_KEY
    assert sent.json == {"model": "gpt-3.5-turbo-instruct", "prompt": PROMPT, "max_tokens": 7, "echo": False}
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == payloads.REPLY_TEXT
    assert all(c.usage is None for c in chunks)  # not asked for: the router's own usage chunk is not relayed
    with_usage = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt=[PROMPT, PROMPT], stream=True,
                                                stream_options={"include_usage": True}))
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-1].usage.prompt_tokens == 2 * len(PROMPT.split())
    charged(gateway, key_id, 3)
    rows = _ledger(gateway, key_id)
    assert [(r["model"], r["status"]) for r in rows] == [("gpt-3.5-turbo-instruct", "ok")] * 3
    words = len(PROMPT.split())
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        (words, payloads.COMPLETION_TOKENS), (words, payloads.COMPLETION_TOKENS), (2 * words, payloads.COMPLETION_TOKENS)]
    assert rows[0]["cost"] == _cost(words, payloads.COMPLETION_TOKENS)


def test_completions_refusals(gateway: Gateway) -> None:
    client, _ = _sdk(gateway, "endpoints-completions-refused")
    with pytest.raises(openai.BadRequestError) as wrong_mode:
        client.completions.create(model="gpt-4o-mini", prompt=PROMPT)  # a chat model
    assert wrong_mode.value.code == "model_not_supported"
    with pytest.raises(openai.BadRequestError) as no_endpoint:
        client.completions.create(model="claude-completion", prompt=PROMPT)
    assert no_endpoint.value.code == "unsupported_endpoint" and "/v1/completions" in no_endpoint.value.message
    with pytest.raises(openai.BadRequestError) as invalid:
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT, temperature=3)
    assert invalid.value.code == "decimal_above_max_value"
    with pytest.raises(openai.BadRequestError) as missing:
        client.post("/completions", body={"model": "gpt-3.5-turbo-instruct"}, cast_to=object)
    assert missing.value.code == "missing_required_parameter"
    with pytest.raises(openai.BadRequestError) as blocked:  # guardrails read the prompt
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["fine", "this is TOP SECRET"])
    assert blocked.value.code == "guardrail_blocked" and blocked.value.param == "prompt"


def test_moderations(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    client, key_id = _sdk(gateway, "endpoints-moderations")
    one = client.moderations.create(model="omni-moderation-latest", input="I will attack the castle at dawn")
    assert one.model == "omni-moderation-latest" and len(one.results) == 1
    assert one.results[0].flagged and one.results[0].categories.violence and not one.results[0].categories.hate
    assert fake_openai.requests[-1].path == "/v1/moderations" and fake_openai.requests[-1].bearer == UPSTREAM_KEY
    many = client.moderations.create(input=["a calm day", "an attack"])  # no model: the key's moderation model
    assert [r.flagged for r in many.results] == [False, True]
    assert fake_openai.requests[-1].json["model"] == "omni-moderation-latest"
    parts = client.moderations.create(model="omni-moderation-latest", input=[
        {"type": "text", "text": "a picture"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}])
    assert parts.results[0].category_applied_input_types.violence == ["image", "text"]
    with pytest.raises(openai.BadRequestError) as wrong_mode:
        client.moderations.create(model="gpt-4o-mini", input="hello")
    assert wrong_mode.value.code == "model_not_supported"
    with pytest.raises(openai.BadRequestError) as invalid:
        client.post("/moderations", body={"input": 3}, cast_to=object)
    assert invalid.value.code == "invalid_type" and invalid.value.param == "input"
    charged(gateway, key_id, 3)
    rows = _ledger(gateway, key_id)
    assert [(r["model"], r["status"]) for r in rows] == [("omni-moderation-latest", "ok")] * 3
    assert rows[0]["prompt_tokens"] > 0 and rows[0]["completion_tokens"] == 0  # no usage upstream: the input, counted


def test_image_generation(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    client, key_id = _sdk(gateway, "endpoints-images")
    tokens = client.images.generate(model="gpt-image-1", prompt="a lighthouse at night", n=2, size="1024x1024")
    assert len(tokens.data) == 2 and tokens.data[0].b64_json == endpoint_payloads.PIXEL_PNG
    assert tokens.usage is not None and tokens.usage.input_tokens == 4
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/images/generations" and sent.bearer == UPSTREAM_KEY
    assert sent.json == {"model": "gpt-image-1", "prompt": "a lighthouse at night", "n": 2, "size": "1024x1024"}
    urls = client.images.generate(prompt="a red boat", model="dall-e-3", response_format="url")
    assert urls.data[0].url and urls.data[0].url.startswith("https://images.example.com/")
    assert urls.data[0].revised_prompt == "a red boat"
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(model="dall-e-3", prompt="the top secret plans")
    assert blocked.value.code == "guardrail_blocked" and blocked.value.param == "prompt"
    with pytest.raises(openai.BadRequestError) as too_many:
        client.images.generate(model="dall-e-3", prompt="boats", n=11)
    assert too_many.value.param == "n"
    with pytest.raises(openai.BadRequestError) as wrong_mode:
        client.images.generate(model="gpt-4o-mini", prompt="boats")
    assert wrong_mode.value.code == "model_not_supported"
    charged(gateway, key_id, 2)
    by_model = {r["model"]: r for r in _ledger(gateway, key_id)}
    image = by_model["gpt-image-1"]  # its tokens at the token prices, and 2 images at 0.011
    output = endpoint_payloads.IMAGE_OUTPUT_TOKENS * 2
    assert (image["prompt_tokens"], image["completion_tokens"]) == (4, output)
    assert image["cost"] == _cost(4, output) + Decimal("0.022")
    assert by_model["dall-e-3"]["cost"] == Decimal("0.04")  # no tokens reported: one image at 0.04


def test_speech_is_binary(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    client, key_id = _sdk(gateway, "endpoints-speech")
    text = "The quick brown fox jumped over the lazy dog."
    mp3 = client.audio.speech.create(model="tts-1", voice="alloy", input=text)
    assert mp3.response.headers["content-type"] == "audio/mpeg"
    assert mp3.content == endpoint_payloads.speech_audio(text, "mp3")  # the upstream's bytes, untouched
    wav = client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav", speed=1.5)
    assert wav.response.headers["content-type"] == "audio/wav" and wav.content.startswith(b"RIFF")
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/audio/speech" and sent.bearer == UPSTREAM_KEY
    assert sent.json == {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav", "speed": 1.5}
    with pytest.raises(openai.BadRequestError) as too_fast:
        client.audio.speech.create(model="tts-1", voice="alloy", input=text, speed=5)
    assert too_fast.value.code == "decimal_above_max_value" and too_fast.value.param == "speed"
    with pytest.raises(openai.BadRequestError) as blocked:
        client.audio.speech.create(model="tts-1", voice="alloy", input="read the top secret file")
    assert blocked.value.code == "guardrail_blocked"
    charged(gateway, key_id, 2)
    rows = _ledger(gateway, key_id)
    assert [r["cost"] for r in rows] == [Decimal("0.000015") * len(text)] * 2  # per character


def test_transcriptions_multipart(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    client, key_id = _sdk(gateway, "endpoints-transcriptions")
    audio = bytes(range(256)) * 10  # 2,560 bytes: 3 seconds to the fake
    seconds = endpoint_payloads.audio_seconds(len(audio))
    plain = client.audio.transcriptions.create(model="whisper", file=("speech.mp3", audio, "audio/mpeg"),
                                               language="en", temperature=0.2)
    assert plain.text == endpoint_payloads.TRANSCRIPT
    upload = fake_openai.uploads[-1]
    assert upload["file"] == audio  # the audio as sent
    assert upload["model"] == b"whisper-1" and upload["language"] == b"en"  # the deployment's model name in the form
    assert fake_openai.requests[-1].bearer == UPSTREAM_KEY
    text = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", audio), response_format="text")
    assert text.strip() == endpoint_payloads.TRANSCRIPT
    verbose = client.audio.transcriptions.create(model="whisper", file=("a.wav", audio), response_format="verbose_json",
                                                 timestamp_granularities=["segment"])
    assert verbose.duration == seconds and verbose.segments and verbose.segments[0].text == endpoint_payloads.TRANSCRIPT
    tokens = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", audio))
    assert tokens.text == endpoint_payloads.TRANSCRIPT
    with pytest.raises(openai.BadRequestError) as hot:
        client.audio.transcriptions.create(model="whisper", file=("a.wav", audio), temperature=1.5)
    assert hot.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as wrong_mode:
        client.audio.transcriptions.create(model="gpt-4o-mini", file=("a.wav", audio))
    assert wrong_mode.value.code == "model_not_supported"
    with httpx.Client(base_url=gateway.url, timeout=30, headers={"authorization": f"Bearer {client.api_key}"}) as http:
        no_file = http.post("/v1/audio/transcriptions", data={"model": "whisper"}, files={"other": ("x", b"1")})
        not_form = http.post("/v1/audio/transcriptions", json={"model": "whisper"})
        too_large = http.post("/v1/audio/transcriptions", data={"model": "whisper"},
                              files={"file": ("big.wav", b"\0" * (33 * 1024 * 1024))})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    assert not_form.status_code == 400 and not_form.json()["error"]["code"] == "invalid_content_type"
    assert too_large.status_code == 413
    charged(gateway, key_id, 4)
    rows = _ledger(gateway, key_id)
    whisper = [r for r in rows if r["model"] == "whisper"]
    assert [r["cost"] for r in whisper] == [Decimal("0.0001") * seconds] * 2  # per second reported
    by_tokens = [r for r in rows if r["model"] == "gpt-4o-transcribe"]
    assert by_tokens[-1]["prompt_tokens"] == seconds * 10  # the transcript's token usage as prompt/completion
    assert by_tokens[-1]["cost"] == _cost(seconds * 10, by_tokens[-1]["completion_tokens"]) > 0
