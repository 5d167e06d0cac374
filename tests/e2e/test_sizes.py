"""Any size the providers accept: huge replies travel the bus in parts, large request
bodies in one call; every call is charged once (ledger and ClickHouse)."""
from __future__ import annotations

import base64
import uuid

import httpx
import openai
import orjson

from services.router.providers.openai import payloads
from tests.e2e.conftest import charged
from tests.e2e.gateway import Gateway
from tests.fakes.openai_upstream import FakeOpenAI

INPUTS = 2048
DIMENSIONS = 3072


def test_2048_embeddings_of_3072_dimensions_through_the_sdk(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    """The SDK's default (base64, what LangChain sends too) through the SDK; the same batch
    as JSON floats (55 MB) read with httpx, as the SDK's own float parsing of it takes
    minutes here, gateway or not."""
    key, key_id = gateway.create_key("huge-embeddings")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=120)
    texts = [f"document {i} of the batch" for i in range(INPUTS)]  # 5 words each at the fake
    packed = client.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=DIMENSIONS)
    assert len(packed.data) == INPUTS and {len(item.embedding) for item in packed.data} == {DIMENSIONS}
    assert packed.data[-1].embedding == payloads.embedding_vector(INPUTS - 1, DIMENSIONS)
    assert packed.usage.prompt_tokens == 5 * INPUTS

    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {key}"}, timeout=120) as http:
        response = http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": texts,
                                                     "dimensions": DIMENSIONS, "encoding_format": "float"})
    assert response.status_code == 200 and len(response.content) > 50_000_000
    floats = orjson.loads(response.content)
    assert len(floats["data"]) == INPUTS and floats["data"][1000]["embedding"] == payloads.embedding_vector(1000, DIMENSIONS)
    assert floats["usage"]["prompt_tokens"] == 5 * INPUTS
    rows = charged(gateway, key_id, 2)
    assert {row["status"] for row in rows} == {"ok"}


def test_a_6_mb_base64_image_in_a_chat_request_passes(gateway: Gateway, fake_openai: FakeOpenAI) -> None:
    key, key_id = gateway.create_key("big-image")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=120)
    image = base64.b64encode(uuid.uuid4().bytes * (4_600_000 // 16)).decode()  # 6.1 MB of base64
    url = f"data:image/png;base64,{image}"
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture"}, {"type": "image_url", "image_url": {"url": url}}]}])
    assert completion.choices[0].message.content == payloads.REPLY_TEXT
    sent = [r for r in fake_openai.requests if r.json and isinstance(r.json.get("messages"), list)
            and isinstance(r.json["messages"][0].get("content"), list) and len(r.json["messages"][0]["content"]) > 1
            and (r.json["messages"][0]["content"][1].get("image_url") or {}).get("url") == url]
    assert len(sent) == 1 and len(url) > 6_000_000  # the image reached the upstream whole
    (row,) = charged(gateway, key_id, 1)
    assert row["status"] == "ok"
