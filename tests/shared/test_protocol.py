"""The bus protocol: calls as the stages see them, and frames as the ingress reads them."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from shared.errors import GatewayError, InvalidRequest, UpstreamTimeout
from shared.events import Principal
from shared.pipeline import Endpoint, Stage
from shared.protocol import (
    FRAME_HEADER,
    FRAME_HEADROOM,
    STATUS_HEADER,
    UPSTREAM_HEADER,
    USAGE_HEADER,
    Call,
    CallEnvelope,
    CallUsage,
    Frame,
    Lease,
    Route,
    Target,
    error_of,
    error_payload,
    frame_of,
    frame_size,
    is_final,
    joined,
    no_responders,
    reply_headers,
    send_reply,
    status_of,
    upstream_of,
    usage_of,
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


def test_a_heartbeat_names_the_upstream_it_went_to() -> None:
    beat = msg(headers={FRAME_HEADER: "heartbeat", UPSTREAM_HEADER: "1"})
    assert frame_of(beat) == Frame.HEARTBEAT and not is_final(beat) and upstream_of(beat) == 1
    before = msg(headers={FRAME_HEADER: "heartbeat"})
    assert upstream_of(before) is None and upstream_of(before, 2) == 2  # keeps what was known
    assert not is_final(msg(headers={FRAME_HEADER: "part"}))


def test_parts_and_the_last_frame_join_in_order() -> None:
    assert joined([], b"whole") == b"whole"
    assert joined([b"ab", b"cd"], b"e") == b"abcde"


async def frames_on(nc: Client, send: Callable[[str], Awaitable[None]]) -> list[Msg]:
    """The frames `send` puts on a fresh inbox, up to the final one (real nats-server)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await send(inbox)
    received = []
    while not received or not is_final(received[-1]):
        received.append(await sub.next_msg(timeout=5))
    await sub.unsubscribe()
    return received


async def test_a_small_reply_is_one_frame_as_ever(nc: Client) -> None:
    (frame,) = await frames_on(nc, lambda inbox: send_reply(nc, inbox, b'{"a": 1}', 201, frame_bytes=8))
    assert (frame_of(frame), status_of(frame), frame.data) == (Frame.REPLY, 201, b'{"a": 1}')
    exact = await frames_on(nc, lambda inbox: send_reply(nc, inbox, b"12345678", frame_bytes=8))
    assert [frame_of(f) for f in exact] == [Frame.REPLY]


async def test_a_large_reply_travels_in_parts_no_larger_than_a_frame(nc: Client) -> None:
    body = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes
    frames = await frames_on(nc, lambda inbox: send_reply(nc, inbox, body, 200, frame_bytes=1000))
    assert [frame_of(f) for f in frames] == [Frame.PART] * 10 + [Frame.REPLY]
    assert all(len(f.data) == 1000 for f in frames[:-1]) and frames[-1].data == body[10_000:]
    assert joined([f.data for f in frames[:-1]], frames[-1].data) == body and status_of(frames[-1]) == 200
    # a multiple of the frame size leaves no empty last frame
    even = await frames_on(nc, lambda inbox: send_reply(nc, inbox, body[:3000], frame_bytes=1000))
    assert [len(f.data) for f in even] == [1000, 1000, 1000] and frame_of(even[-1]) == Frame.REPLY


async def test_a_frame_never_exceeds_what_the_server_accepts(nc: Client) -> None:
    assert frame_size(nc, 10**12) == nc.max_payload - FRAME_HEADROOM
    assert frame_size(nc, 1000) == 1000


async def test_a_lease_tells_the_caller_at_once_when_the_call_goes_upstream(nc: Client) -> None:
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    lease = Lease(nc, inbox)
    await lease.reaching(0)
    await lease.reaching(0)  # the same target again: nothing new to tell
    await lease.reaching(1)  # failover
    await lease.beat()
    beats = [await sub.next_msg(timeout=5) for _ in range(3)]
    assert [(frame_of(b), upstream_of(b)) for b in beats] == [(Frame.HEARTBEAT, 0), (Frame.HEARTBEAT, 1),
                                                            (Frame.HEARTBEAT, 1)]
    with pytest.raises(NatsTimeout):
        await sub.next_msg(timeout=0.2)
    await sub.unsubscribe()
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


@pytest.mark.parametrize("value", ["", "1 2", "1 2 x", "-1 2 0.1", "1 2 -0.5", "1 2 NaN", "1 2 Infinity", "a b 1"])
def test_a_usage_header_that_does_not_read_is_no_usage(value: str) -> None:
    assert usage_of(Msg(None, headers={USAGE_HEADER: value})) is None  # type: ignore[arg-type]


def test_usage_travels_on_reply_and_end_headers() -> None:
    used = CallUsage(prompt_tokens=12, completion_tokens=3, cost=Decimal("0.0000123"))
    assert usage_of(Msg(None, headers=reply_headers(200, used))) == used  # type: ignore[arg-type]
    assert usage_of(Msg(None, headers=reply_headers(200))) is None  # type: ignore[arg-type]
