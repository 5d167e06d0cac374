"""The bus protocol between the ingress and the workers: everything that travels, in one place.

A call is one NATS message to the subject of its first stage (shared/pipeline.py), with
the ingress's inbox as reply subject. Its payload is one line of envelope JSON
(`CallEnvelope`: who, which request, which call, until when, what the ingress decided)
followed by the client's request body exactly as it was validated by the ingress. A stage
passes the call on with `forward`, keeping the reply subject, so the last stage answers
the ingress directly.

Everything sent to the inbox is a frame, named by the `Jetgate-Frame` header:
- `reply`: a whole answer; `Jetgate-Status` holds the HTTP status, the body is the JSON;
- `chunk`: one stream chunk, exactly the JSON that follows `data: ` on the SSE wire;
- `end`: the stream is complete;
- `error`: a `WireError` (shared/errors.py); ends the call, streamed or not.
What a frame carries is redacted as it is sent: reply and chunk bodies of the secrets the
sending process holds (an upstream echoing its key), error text by `GatewayError`.
Replies to anything else on the bus (usage queries) are plain typed messages below.
"""
from __future__ import annotations

import time
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError
from pydantic import BaseModel, Field

from shared.errors import GatewayError, InvalidRequest, PayloadTooLarge, WireError
from shared.events import Principal
from shared.pipeline import Endpoint, Stage, stage_subject
from shared.redact import redact_content

FRAME_HEADER = "Jetgate-Frame"
STATUS_HEADER = "Jetgate-Status"


class Frame(StrEnum):
    REPLY = "reply"
    CHUNK = "chunk"
    END = "end"
    ERROR = "error"


class Target(BaseModel):
    """One deployment of a model: a provider (by name) and the model name it knows."""

    provider: str
    model: str


class Route(BaseModel):
    """What the ingress decided for a call: the model, its deployments in failover order, its prices."""

    model: str
    targets: list[Target]
    input_per_million: Decimal = Decimal(0)
    output_per_million: Decimal = Decimal(0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (self.input_per_million * prompt_tokens + self.output_per_million * completion_tokens) / 1_000_000


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

    def seconds_left(self) -> float:
        return self.deadline - time.time()


class Call:
    """A call as a stage holds it: the envelope, and the body as the client sent it."""

    __slots__ = ("body", "envelope")

    def __init__(self, envelope: CallEnvelope, body: bytes) -> None:
        self.envelope = envelope
        self.body = body

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


def reply_headers(status: int = 200) -> dict[str, str]:
    return {FRAME_HEADER: Frame.REPLY.value, STATUS_HEADER: str(status)}


def error_payload(error: GatewayError) -> bytes:
    return error.to_wire().model_dump_json(exclude_defaults=True).encode()


async def send_error(nc: Client, inbox: str, error: GatewayError) -> None:
    """The one way an error reaches a caller over the bus."""
    await nc.publish(inbox, error_payload(error), headers=_ERROR_HEADERS)


async def send_reply(nc: Client, inbox: str, body: bytes, status: int = 200) -> None:
    await nc.publish(inbox, redact_content(body), headers=reply_headers(status))  # an echoed key stops here


async def send_chunk(nc: Client, inbox: str, chunk: bytes) -> None:
    await nc.publish(inbox, redact_content(chunk), headers=CHUNK_HEADERS)


async def send_end(nc: Client, inbox: str) -> None:
    await nc.publish(inbox, b"", headers=END_HEADERS)


def frame_of(msg: Msg) -> str | None:
    return msg.headers.get(FRAME_HEADER) if msg.headers else None


def is_final(msg: Msg) -> bool:
    return frame_of(msg) in (Frame.END.value, Frame.ERROR.value, Frame.REPLY.value)


def error_of(msg: Msg) -> GatewayError | None:
    """The error an error frame carries; None for any other frame."""
    if frame_of(msg) != Frame.ERROR.value:
        return None
    return GatewayError.from_wire(WireError.model_validate_json(msg.data))


def status_of(msg: Msg) -> int:
    headers = msg.headers
    return int(headers.get(STATUS_HEADER, "200")) if headers else 200


def no_responders(msg: Msg) -> bool:
    """The server's own answer when nobody is subscribed to a subject."""
    headers = msg.headers
    return bool(headers) and headers is not None and headers.get("Status") == "503" and not msg.data


# control messages and queries -----------------------------------------------------------

class CancelRequest(BaseModel):
    """Broadcast to every router: stop this call's upstream request, charge what was made."""

    call_id: str


class KeyRevoked(BaseModel):
    """Broadcast to every ingress: forget this key at once."""

    key_id: str


UsageGroup = Literal["model", "key_id", "org_id", "provider", "day"]


def _default_groups() -> list[UsageGroup]:
    return ["model", "key_id"]


class UsageQuery(BaseModel):
    group_by: list[UsageGroup] = Field(default_factory=_default_groups)
    org_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    since: str | None = None  # ISO-8601
    until: str | None = None


class UsageRow(BaseModel):
    group: dict[str, str]
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: str  # decimal as string: never a float


class UsageReport(BaseModel):
    rows: list[UsageRow]
    error: str | None = None
