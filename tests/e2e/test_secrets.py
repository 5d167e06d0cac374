"""Secrets never leave: an upstream that echoes the gateway's key to it — in an error, a
header, an answer, a stream — never gets that key to the client, the events on JetStream,
the audit log in Postgres or any service's log."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import nats
import nats.errors
import openai
import pytest

from shared.subjects import STREAMS
from tests.e2e.conftest import ECHO_KEY, pg_rows
from tests.e2e.gateway import Gateway, wait_for
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Which key did I use?"}]


@pytest.fixture(scope="module")
def api_key(gateway: Gateway) -> str:
    return gateway.create_key("secrets-e2e")[0]


@pytest.fixture
def client(gateway: Gateway, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=api_key, max_retries=0, timeout=20) as sdk:
        yield sdk


class Seen:
    """Everything the client received: bodies and headers, as text, and the request ids."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.request_ids: list[str] = []

    def add(self, response: httpx.Response, body: str) -> None:
        self.parts += [body, *(f"{name}: {value}" for name, value in response.headers.items())]
        self.request_ids.append(response.headers["x-request-id"])

    def text(self) -> str:
        return "\n".join(self.parts)


def streamed(gateway: Gateway, api_key: str, model: str) -> tuple[httpx.Response, str]:
    """A streamed chat call over plain httpx: the response (its headers) and the raw SSE text."""
    with httpx.Client(base_url=gateway.url, timeout=20, headers={"authorization": f"Bearer {api_key}"}) as http, \
            http.stream("POST", "/v1/chat/completions",
                        json={"model": model, "messages": MESSAGES, "stream": True}) as response:
        return response, "".join(response.iter_text())


def _stored_events(nats_url: str) -> list[bytes]:
    """Every message of every gateway stream, as stored."""
    async def read() -> list[bytes]:
        nc = await nats.connect(nats_url)
        found: list[bytes] = []
        try:
            js = nc.jetstream()
            for spec in STREAMS:
                sub = await js.subscribe(spec.subjects[0], ordered_consumer=True)
                try:
                    while True:
                        found.append((await sub.next_msg(timeout=1)).data)
                except nats.errors.TimeoutError:
                    pass
                finally:
                    await sub.unsubscribe()
        finally:
            await nc.close()
        return found

    return asyncio.run(read())


def test_an_upstream_echoing_its_key_never_gets_it_out(gateway: Gateway, client: openai.OpenAI,
                                                       echo_upstream: FakeOpenAI) -> None:
    seen = Seen()

    answer = client.chat.completions.with_raw_response.create(model="echo-key", messages=MESSAGES)  # type: ignore[arg-type]
    seen.add(answer.http_response, answer.http_response.text)
    assert answer.parse().choices[0].message.content == "You sent me ***, right?"  # the answer, minus the key

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="echo-key-400", messages=MESSAGES)  # type: ignore[arg-type]
    seen.add(bad.value.response, bad.value.response.text)
    assert isinstance(bad.value.body, dict)
    assert (bad.value.body["message"], bad.value.body["param"]) == ("Incorrect API key provided: ***.", "key ***")

    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="echo-key-500", messages=MESSAGES)  # type: ignore[arg-type]
    seen.add(failed.value.response, failed.value.response.text)
    assert failed.value.status_code == 502 and "***" in failed.value.message

    response, body = streamed(gateway, client.api_key, "echo-key-stream")
    seen.add(response, body)
    assert "You sent me " in body and '"content":"***"' in body and body.endswith("data: [DONE]\n\n")
    response, body = streamed(gateway, client.api_key, "echo-key-stream-error")
    seen.add(response, body)
    assert "The stream broke while holding ***" in body  # the SSE error event, redacted

    # the upstream did get the key, and echoed it: without redaction it would be everywhere
    echoed = echo_upstream.requests
    assert len(echoed) == 5 and all(r.bearer == ECHO_KEY for r in echoed)

    assert ECHO_KEY not in seen.text()

    def audit_rows() -> list[str]:
        rows = pg_rows(gateway, "SELECT request_id, data::text AS data FROM audit_log WHERE request_id = ANY($1)",
                       seen.request_ids)
        return [row["data"] for row in rows] if len({row["request_id"] for row in rows}) == 5 else []

    rows = wait_for(audit_rows)
    assert not any(ECHO_KEY in row for row in rows)
    assert any("Incorrect API key provided: ***" in row for row in rows)  # the reason is there, redacted

    events = _stored_events(gateway.env["JETGATE_NATS_URL"])
    assert any(seen.request_ids[1].encode() in event for event in events)
    assert not any(ECHO_KEY.encode() in event for event in events)

    logs = {path.name: path.read_text() for path in gateway.workdir.glob("*.log")}
    assert {"ingress.log", "router.log", "guardrails.log", "accounting.log"} <= set(logs)
    assert "deployment echo/echo-key-500 failed: provider echo failed with HTTP 500" in logs["router.log"]
    for name, text in logs.items():
        assert ECHO_KEY not in text, name
