"""The fake Gemini upstream, checked with Google's official `google-genai` SDK: if the SDK
parses its answers (its response models forbid unknown fields), streams them, and raises
the right errors, the fake speaks the API the gemini adapter must speak. Vertex is checked
with google-auth's own service-account credentials against the fake's token endpoint."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types
from google.oauth2 import service_account

from services.router.providers.gemini import payloads
from tests.fakes.gemini_upstream import FakeGemini

KEY = "AIzaSyFakeUpstreamKeyForTheSdk0123456789"
WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)},
                            required=["city"]))])


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(expected_api_key=KEY, retry_delay_s=9) as server:
        yield server


def _options(fake: FakeGemini, version: str) -> types.HttpOptions:
    return types.HttpOptions(base_url=f"http://127.0.0.1:{fake.port}/", api_version=version, timeout=10_000,
                             retry_options=types.HttpRetryOptions(attempts=1))


@pytest.fixture(scope="module")
def client(fake: FakeGemini) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=_options(fake, "v1beta"))


def test_generate_content(client: genai.Client) -> None:
    done = client.models.generate_content(model="gemini-2.5-flash", contents="Say hello to the fake",
                                          config=types.GenerateContentConfig(system_instruction="Be brief."))
    assert done.text == payloads.REPLY_TEXT
    assert done.candidates is not None and done.candidates[0].finish_reason == types.FinishReason.STOP
    assert done.usage_metadata is not None and done.usage_metadata.prompt_token_count == 7
    assert done.usage_metadata.candidates_token_count == payloads.CANDIDATES_TOKENS


def test_stream(client: genai.Client, fake: FakeGemini) -> None:
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Stream please"))
    assert "".join(c.text or "" for c in chunks) == payloads.REPLY_TEXT
    assert chunks[-1].candidates is not None and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert fake.requests[-1].query == "alt=sse"


def test_function_call(client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=types.AutomaticFunctionCallingConfig(
        disable=True))
    done = client.models.generate_content(model="gemini-2.5-flash", contents="Weather in Paris?", config=config)
    assert done.function_calls is not None
    (call,) = done.function_calls
    assert call.name == "get_weather" and call.args == {"city": "Paris"}


def test_prompt_blocked_and_thinking(client: genai.Client) -> None:
    blocked = client.models.generate_content(model="blocked", contents="something dangerous")
    assert blocked.prompt_feedback is not None and blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not blocked.candidates
    thinking = client.models.generate_content(model="thinking", contents="think about it")
    assert thinking.usage_metadata is not None
    assert thinking.usage_metadata.thoughts_token_count == payloads.THOUGHTS_TOKENS
    assert thinking.usage_metadata.cached_content_token_count == payloads.CACHED_TOKENS


def test_embeddings(client: genai.Client) -> None:
    done = client.models.embed_content(model="gemini-embedding-001", contents=["one", "two"],
                                       config=types.EmbedContentConfig(output_dimensionality=4))
    assert done.embeddings is not None
    assert [e.values for e in done.embeddings] == [payloads.embedding_vector(0, 4), payloads.embedding_vector(1, 4)]


@pytest.mark.parametrize(("model", "code", "status"), [
    ("fail-400", 400, "INVALID_ARGUMENT"), ("bad-key", 400, "INVALID_ARGUMENT"), ("fail-403", 403, "PERMISSION_DENIED"),
    ("fail-429", 429, "RESOURCE_EXHAUSTED"), ("fail-500", 500, "INTERNAL"), ("fail-503", 503, "UNAVAILABLE"),
])
def test_errors(client: genai.Client, model: str, code: int, status: str) -> None:
    with pytest.raises(errors.APIError) as caught:
        client.models.generate_content(model=model, contents="hi")
    assert (caught.value.code, caught.value.status) == (code, status)


def test_wrong_key_is_api_key_invalid(fake: FakeGemini) -> None:
    wrong = genai.Client(api_key="AIzaSyNotTheRightKey000000000000000000000", http_options=_options(fake, "v1beta"))
    with pytest.raises(errors.ClientError) as caught:
        wrong.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 400 and "API key not valid" in str(caught.value.message)


def test_vertex_with_google_auth_service_account(fake: FakeGemini) -> None:
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        fake.service_account(), scopes=["https://www.googleapis.com/auth/cloud-platform"])
    vertex = genai.Client(vertexai=True, project="fake-project", location="us-central1", credentials=credentials,
                          http_options=_options(fake, "v1"))
    done = vertex.models.generate_content(model="gemini-2.5-pro", contents="Hello Vertex")
    assert done.text == payloads.REPLY_TEXT
    token, call = fake.requests[-2:]
    assert token.path == "/token" and call.headers["authorization"].startswith("Bearer ya29.fake-")
    assert call.path == "/v1/projects/fake-project/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
