"""The bus protocol between the ingress and the workers: everything that travels, in one place.

A call is one NATS message to the subject of its first stage (shared/pipeline.py), with
the ingress's inbox as reply subject. Its payload is one line of envelope JSON
(`CallEnvelope`: who, which request, which call, until when, what the ingress decided)
followed by the client's request body exactly as it was validated by the ingress. A stage
passes the call on with `forward`, keeping the reply subject, so the last stage answers
the ingress directly.

Everything sent to the inbox is a frame, named by the `Jetgate-Frame` header:
- `reply`: a whole answer; `Jetgate-Status` holds the HTTP status, the body is the JSON;
  `Jetgate-Usage` what the call used (below);
- `part`: a piece of a reply too large for one message; the parts, in order, then the
  `reply` frame's own data are the whole answer (a small reply is one `reply` frame);
- `chunk`: one stream chunk, exactly the JSON that follows `data: ` on the SSE wire; for
  a pass-through call (`native` in the envelope, shared/native.py) the upstream's bytes as
  they came, the first (empty) chunk carrying the upstream's status (`Jetgate-Status`) and
  the response headers the client gets (`Jetgate-Headers`, JSON); for any other streamed
  call the first chunk may carry `Jetgate-Headers` too (the upstream's rate-limit and
  processing-time headers, shared/native.py `upstream_info_headers`), as a `reply` may;
- `end`: the stream is complete; `Jetgate-Usage` what the call used;
- `error`: a `WireError` (shared/errors.py); ends the call, streamed or not;
- `heartbeat`: the stage holding the call is alive (sent every interval while it holds
  it); `Jetgate-Upstream` names the route target (its index) the call has gone to, sent
  at once, before the request to the upstream leaves. A caller that hears nothing for a
  while knows the worker is gone, and whether the call may be sent again.
`Jetgate-Usage` (on the router's `reply` and `end`): `<prompt tokens> <completion tokens>
<cost in USD>`, the same numbers as the call's `usage.recorded` event, so the ingress
settles the call's rate limits and budget reservation at once (`CallUsage`). A frame
without it (another stage's reply, an older router) settles with the ingress's estimate.
What a frame carries is redacted as it is sent: reply and chunk bodies of the secrets the
sending process holds (an upstream echoing its key), error text by `GatewayError`.
Control broadcasts are in shared/control.py, the usage query in shared/usage_report.py.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError
from pydantic import BaseModel

from shared.errors import GatewayError, InvalidRequest, PayloadTooLarge, WireError
from shared.events import Principal
from shared.native import NativeRequest
from shared.pipeline import Endpoint, Stage, stage_subject
from shared.prices import TokenPrices
from shared.redact import redact_content

FRAME_HEADER = "Jetgate-Frame"
STATUS_HEADER = "Jetgate-Status"
UPSTREAM_HEADER = "Jetgate-Upstream"
USAGE_HEADER = "Jetgate-Usage"
# on the first chunk of a pass-through answer: the provider's response headers the client gets (JSON)
NATIVE_HEADERS_HEADER = "Jetgate-Headers"
# room left in a message for the frame's headers and the protocol line
FRAME_HEADROOM = 4096
DEFAULT_FRAME_BYTES = 4 * 1024 * 1024


class Frame(StrEnum):
    REPLY = "reply"
    PART = "part"
    CHUNK = "chunk"
    END = "end"
    ERROR = "error"
    HEARTBEAT = "heartbeat"


class Target(BaseModel):
    """One deployment of a model: a provider (by name) and the model name it knows."""

    provider: str
    model: str


class Route(TokenPrices):
    """What the ingress decided for a call: the model, its deployments in failover order, its
    prices (the model's `Pricing`, shared/config.py: its token prices, and these two)."""

    model: str
    targets: list[Target]
    per_request: Decimal = Decimal(0)  # an answered call's own price, and each unit's (Pricing in shared/config.py)
    per_unit: Decimal = Decimal(0)
    timeout_s: float | None = None  # the model's own call timeout (None: the ingress's default)
    stream_idle_timeout_s: float | None = None


class CallEnvelope(BaseModel):
    call_id: str  # the gateway's own id for this call (cancels name it), never the client's
    request_id: str
    principal: Principal
    endpoint: Endpoint
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage as the client asked
    deadline: float  # unix time after which nobody waits for the answer
    route: Route
    stages: list[Stage]  # the stages still ahead, the receiving one first
    native: NativeRequest | None = None  # a pass-through call's method, path, query and headers

    def seconds_left(self) -> float:
        return self.deadline - time.time()


class Call:
    """A call as a stage holds it: the envelope, and the body as the client sent it; while
    a stage serves it, its `lease` (heartbeats to the caller)."""

    __slots__ = ("body", "envelope", "lease")

    def __init__(self, envelope: CallEnvelope, body: bytes) -> None:
        self.envelope = envelope
        self.body = body
        self.lease: Lease | None = None

    def encode(self) -> bytes:
        return self.envelope.model_dump_json().encode() + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> Call:
        """Raises InvalidRequest when the message is not a call."""
        head, sep, body = data.partition(b"\n")
        if not sep:
            raise InvalidRequest("The message is not a gateway call.", code="invalid_call")
        try:
            return cls(CallEnvelope.model_validate_json(head), body)
        except ValueError:
            raise InvalidRequest("The message is not a gateway call.", code="invalid_call") from None

    def subject(self) -> str:
        """The subject of the stage this call is for."""
        return stage_subject(self.envelope.stages[0], self.envelope.endpoint)

    def passed_on(self, body: bytes | None = None) -> Call:
        """This call as the next stage receives it (optionally with a changed body)."""
        envelope = self.envelope.model_copy(update={"stages": self.envelope.stages[1:]})
        return Call(envelope, self.body if body is None else body)


async def forward(nc: Client, msg: Msg, call: Call, body: bytes | None = None) -> None:
    """Pass a call to its next stage with the caller's reply subject."""
    following = call.passed_on(body)
    if not following.envelope.stages:
        raise GatewayError("The pipeline has no stage after this one.", code="pipeline_error")
    try:
        await nc.publish(following.subject(), following.encode(), reply=msg.reply)
    except MaxPayloadError:
        raise PayloadTooLarge("The request is larger than the gateway's bus allows.", retryable=False) from None


# frames --------------------------------------------------------------------------------

CHUNK_HEADERS = {FRAME_HEADER: Frame.CHUNK.value}
END_HEADERS = {FRAME_HEADER: Frame.END.value}
_ERROR_HEADERS = {FRAME_HEADER: Frame.ERROR.value}
_PART_HEADERS = {FRAME_HEADER: Frame.PART.value}
_HEARTBEAT_HEADERS = {FRAME_HEADER: Frame.HEARTBEAT.value}


class CallUsage(BaseModel):
    """What a call used, as the last stage tells the ingress on its final frame."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)

    def header(self) -> str:
        return f"{self.prompt_tokens} {self.completion_tokens} {self.cost}"


def usage_of(msg: Msg) -> CallUsage | None:
    """The usage a `reply` or `end` frame carries; None when it carries none (or a bad one)."""
    value = msg.headers.get(USAGE_HEADER) if msg.headers else None
    if not value:
        return None
    fields = value.split(" ")
    if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    try:
        cost = Decimal(fields[2])
    except ArithmeticError:
        return None
    if not cost.is_finite() or cost < 0:
        return None
    return CallUsage(prompt_tokens=int(fields[0]), completion_tokens=int(fields[1]), cost=cost)


def reply_headers(status: int = 200, usage: CallUsage | None = None,
                  client: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = {FRAME_HEADER: Frame.REPLY.value, STATUS_HEADER: str(status)}
    if usage is not None:
        headers[USAGE_HEADER] = usage.header()
    if client:
        headers[NATIVE_HEADERS_HEADER] = _client_headers_value(client)
    return headers


def _client_headers_value(client: Mapping[str, str]) -> str:
    return redact_content(orjson.dumps(dict(client))).decode()


def client_headers(msg: Msg) -> dict[str, str]:
    """The upstream's response headers a frame says the client gets (`Jetgate-Headers`)."""
    raw = msg.headers.get(NATIVE_HEADERS_HEADER) if msg.headers else None
    if not raw:
        return {}
    try:
        headers = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def error_payload(error: GatewayError) -> bytes:
    return error.to_wire().model_dump_json(exclude_defaults=True).encode()


async def send_error(nc: Client, inbox: str, error: GatewayError) -> None:
    """The one way an error reaches a caller over the bus."""
    await nc.publish(inbox, error_payload(error), headers=_ERROR_HEADERS)


def frame_size(nc: Client, frame_bytes: int = DEFAULT_FRAME_BYTES) -> int:
    """The most data one frame carries: `frame_bytes`, within what the server accepts."""
    return max(1, min(frame_bytes, nc.max_payload - FRAME_HEADROOM))


async def send_reply(nc: Client, inbox: str, body: bytes, status: int = 200, *,
                     frame_bytes: int = DEFAULT_FRAME_BYTES, usage: CallUsage | None = None,
                     client: Mapping[str, str] | None = None) -> None:
    """A whole answer: one `reply` frame, or `part` frames then a `reply` frame when it is
    larger than one frame carries (frames from one connection arrive in order)."""
    body = redact_content(body)  # an echoed key stops here
    size = frame_size(nc, frame_bytes)
    if len(body) <= size:  # the hot path: one message, as ever
        await nc.publish(inbox, body, headers=reply_headers(status, usage, client))
        return
    view = memoryview(body)
    last = (len(body) - 1) // size * size
    for start in range(0, last, size):
        await nc.publish(inbox, bytes(view[start:start + size]), headers=_PART_HEADERS)
    await nc.publish(inbox, bytes(view[last:]), headers=reply_headers(status, usage, client))


async def send_chunk(nc: Client, inbox: str, chunk: bytes, client: Mapping[str, str] | None = None) -> None:
    """`client`: on a stream's first chunk, the upstream's headers the client gets."""
    headers = {**CHUNK_HEADERS, NATIVE_HEADERS_HEADER: _client_headers_value(client)} if client else CHUNK_HEADERS
    await nc.publish(inbox, redact_content(chunk), headers=headers)


async def send_end(nc: Client, inbox: str, usage: CallUsage | None = None) -> None:
    headers = END_HEADERS if usage is None else {**END_HEADERS, USAGE_HEADER: usage.header()}
    await nc.publish(inbox, b"", headers=headers)


async def send_heartbeat(nc: Client, inbox: str, upstream: int | None = None) -> None:
    headers = _HEARTBEAT_HEADERS if upstream is None else {**_HEARTBEAT_HEADERS, UPSTREAM_HEADER: str(upstream)}
    await nc.publish(inbox, b"", headers=headers)


class Lease:
    """A stage's hold on one call: while it lasts, the stage's ticker sends the caller a
    heartbeat every interval (shared/stage.py); `reaching` tells the caller at once that
    the call is going to an upstream, so it is never sent again after that."""

    __slots__ = ("_nc", "inbox", "last", "upstream")

    def __init__(self, nc: Client, inbox: str) -> None:
        self._nc = nc
        self.inbox = inbox
        self.upstream: int | None = None
        self.last = time.monotonic()  # when the caller last heard of this call

    async def beat(self) -> None:
        self.last = time.monotonic()
        await send_heartbeat(self._nc, self.inbox, self.upstream)

    async def reaching(self, target: int) -> None:
        """Call right before the request to the route's target `target` leaves."""
        if self.upstream != target:
            self.upstream = target
            await self.beat()


def frame_of(msg: Msg) -> str | None:
    return msg.headers.get(FRAME_HEADER) if msg.headers else None


def is_final(msg: Msg) -> bool:
    return frame_of(msg) in (Frame.END.value, Frame.ERROR.value, Frame.REPLY.value)


def error_of(msg: Msg) -> GatewayError | None:
    """The error an error frame carries; None for any other frame."""
    if frame_of(msg) != Frame.ERROR.value:
        return None
    return GatewayError.from_wire(WireError.model_validate_json(msg.data))


def upstream_of(msg: Msg, known: int | None = None) -> int | None:
    """The route target a heartbeat says the call went to; `known` when it names none."""
    value = msg.headers.get(UPSTREAM_HEADER) if msg.headers else None
    return int(value) if value is not None and value.isdigit() else known


def joined(parts: list[bytes], last: bytes) -> bytes:
    """A reply's whole data: its `part` frames' data in order, then the `reply` frame's."""
    if not parts:
        return last
    parts.append(last)
    return b"".join(parts)


def status_of(msg: Msg) -> int:
    headers = msg.headers
    return int(headers.get(STATUS_HEADER, "200")) if headers else 200


def no_responders(msg: Msg) -> bool:
    """The server's own answer when nobody is subscribed to a subject."""
    headers = msg.headers
    return bool(headers) and headers is not None and headers.get("Status") == "503" and not msg.data
