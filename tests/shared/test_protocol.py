"""The bus protocol: calls as the stages see them, and frames as the ingress reads them."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from shared.errors import GatewayError, InvalidRequest, UpstreamTimeout
from shared.events import Principal
from shared.pipeline import Endpoint, Stage
from shared.protocol import (
    FRAME_HEADER,
    STATUS_HEADER,
    Call,
    CallEnvelope,
    Frame,
    Route,
    Target,
    error_of,
    error_payload,
    frame_of,
    is_final,
    no_responders,
    reply_headers,
    status_of,
)

BODY = b'{"model": "gw", "messages": [{"role": "user", "content": "h\\u00e9"}], "x_vendor": {"keep": [1, 2.50]}}'


def call(stages: list[Stage]) -> Call:
    route = Route(model="gw", targets=[Target(provider="a", model="up-a"), Target(provider="b", model="up-b")],
                  input_per_million=Decimal("0.15"), output_per_million=Decimal("0.6"))
    envelope = CallEnvelope(call_id="c1", request_id="r1", principal=Principal(key_id="k", org_id="acme"),
                            endpoint=Endpoint.CHAT, stream=True, include_usage=True, deadline=time.time() + 5,
                            route=route, stages=stages)
    return Call(envelope, BODY)


def msg(data: bytes = b"", headers: dict[str, str] | None = None) -> Msg:
    return Msg(_client=None, subject="inbox", data=data, headers=headers)  # type: ignore[arg-type]


def test_a_call_round_trips_with_its_body_byte_for_byte() -> None:
    original = call([Stage.GUARDRAILS, Stage.ROUTER])
    decoded = Call.decode(original.encode())
    assert decoded.envelope == original.envelope
    assert decoded.body == BODY  # never re-serialised: unknown fields and number forms survive
    assert decoded.subject() == "jetgate.rpc.guardrails.chat"
    assert 0 < decoded.envelope.seconds_left() <= 5


def test_passing_on_drops_the_stage_and_may_change_the_body() -> None:
    original = call([Stage.GUARDRAILS, Stage.ROUTER])
    same = original.passed_on()
    assert same.envelope.stages == [Stage.ROUTER] and same.subject() == "jetgate.rpc.router.chat" and same.body == BODY
    changed = original.passed_on(b"{}")
    assert changed.body == b"{}" and original.envelope.stages == [Stage.GUARDRAILS, Stage.ROUTER]


@pytest.mark.parametrize("data", [b"{}", b"not a call", b'{"call_id": 1}\n{}', b""])
def test_what_is_not_a_call_is_an_invalid_call(data: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Call.decode(data)
    assert caught.value.code == "invalid_call" and caught.value.status == 400


def test_the_route_prices_exactly() -> None:
    assert call([Stage.ROUTER]).envelope.route.cost(1234, 567) == Decimal("0.0005253")


def test_an_error_frame_carries_every_field() -> None:
    error = GatewayError("boom", status=429, type="rate_limit_exceeded", code="rate_limit_exceeded", param="model",
                         retryable=True, retry_after="7")
    frame = msg(error_payload(error), {FRAME_HEADER: Frame.ERROR.value})
    rebuilt = error_of(frame)
    assert rebuilt is not None and is_final(frame)
    assert rebuilt.to_wire() == error.to_wire()
    timeout = error_of(msg(error_payload(UpstreamTimeout("slow")), {FRAME_HEADER: Frame.ERROR.value}))
    assert timeout is not None and (timeout.status, timeout.code) == (504, "upstream_timeout")


def test_frames_are_named_by_their_header() -> None:
    reply = msg(b"{}", reply_headers(201))
    assert frame_of(reply) == "reply" and status_of(reply) == 201 and is_final(reply) and error_of(reply) is None
    chunk = msg(b"{}", {FRAME_HEADER: Frame.CHUNK.value})
    assert not is_final(chunk) and status_of(chunk) == 200
    assert is_final(msg(b"", {FRAME_HEADER: Frame.END.value}))
    assert frame_of(msg(b"{}")) is None and status_of(msg(b"{}")) == 200


def test_the_servers_no_responders_answer_is_recognised() -> None:
    assert no_responders(msg(b"", {"Status": "503"}))
    assert not no_responders(msg(b"{}", {"Status": "503"})) and not no_responders(msg(b"", {STATUS_HEADER: "503"}))


async def test_frames_to_the_caller_carry_no_known_secret(nc: Client) -> None:
    import asyncio
    import secrets

    import orjson

    from shared.protocol import send_chunk, send_error, send_reply
    from shared.secrets import KNOWN_SECRETS

    key = "provider-key-" + secrets.token_urlsafe(16)
    KNOWN_SECRETS.add(key)
    inbox = nc.new_inbox()
    frames: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_frame(received: Msg) -> None:
        frames.put_nowait(received)

    await nc.subscribe(inbox, cb=on_frame)
    await send_reply(nc, inbox, orjson.dumps({"choices": [{"message": {"content": f"key {key}"}}]}))
    await send_chunk(nc, inbox, orjson.dumps({"choices": [{"delta": {"content": key}}]}))
    await send_error(nc, inbox, GatewayError(f"upstream echoed {key}", status=400))
    got = [await asyncio.wait_for(frames.get(), 5) for _ in range(3)]
    assert [frame_of(m) for m in got] == ["reply", "chunk", "error"]
    assert all(key.encode() not in m.data for m in got)
    assert orjson.loads(got[0].data)["choices"][0]["message"]["content"] == "key ***"  # still the answer, as JSON
    assert orjson.loads(got[1].data)["choices"][0]["delta"]["content"] == "***"
    error = error_of(got[2])
    assert error is not None and error.message == "upstream echoed ***"
