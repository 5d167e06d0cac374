"""The fake Bedrock runtime's own parts: the event-stream encoder against a known frame of
the AWS event-stream test vectors, and the SigV4 check (it must refuse what AWS refuses,
or the adapter's signing tests would prove nothing)."""
from __future__ import annotations

import datetime
from collections.abc import Iterator

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from tests.fakes.bedrock_checks import AwsCredentials, signature_problem
from tests.fakes.bedrock_upstream import CREDENTIALS, REGION, FakeBedrock
from tests.fakes.event_stream import encode_message, event

# "payload_one_str_header" of the AWS event-stream test vectors: one string header
# `content-type: application/json`, payload {'foo':'bar'}; total 0x3D, headers 0x20,
# prelude CRC 0x07FD8396, message CRC 0x8D9C08B1
KNOWN_FRAME = (b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10"
               b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1")
BODY = b'{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}'


def test_the_encoder_writes_the_known_frame_byte_for_byte() -> None:
    assert encode_message({"content-type": "application/json"}, b"{'foo':'bar'}") == KNOWN_FRAME


def test_botocore_decodes_what_the_encoder_writes() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé"}}))
    (message,) = list(buffer)
    assert message.headers == {":event-type": "contentBlockDelta", ":content-type": "application/json",
                               ":message-type": "event"}
    assert message.payload.decode() == '{"contentBlockIndex":0,"delta":{"text":"Hé"}}'


def _signed(url: str, body: bytes, credentials: AwsCredentials = CREDENTIALS, region: str = REGION) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(credentials.access_key_id, credentials.secret_access_key), "bedrock", region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


def _check(headers: dict[str, str], body: bytes = BODY, path: str = "/model/m/converse") -> str | None:
    headers = {"host": "127.0.0.1:8080", **headers}
    problem = signature_problem("POST", "http://127.0.0.1:8080", path, "", headers, body, CREDENTIALS, REGION)
    return problem[0] if problem is not None else None


def test_the_signature_check_accepts_botocore_and_refuses_what_aws_refuses() -> None:
    url = "http://127.0.0.1:8080/model/m/converse"
    good = _signed(url, BODY)
    assert _check(good) is None
    assert _check(good, body=BODY + b" ") == "InvalidSignatureException"  # the body changed
    assert _check(good, path="/model/other/converse") == "InvalidSignatureException"
    assert _check(_signed(url, BODY, region="eu-west-1")) == "InvalidSignatureException"
    wrong_secret = AwsCredentials(CREDENTIALS.access_key_id, "not-the-secret")
    assert _check(_signed(url, BODY, wrong_secret)) == "InvalidSignatureException"
    assert _check(_signed(url, BODY, AwsCredentials("AKIDSOMEONEELSE", "x"))) == "UnrecognizedClientException"
    assert _check({}) == "MissingAuthenticationTokenException"
    stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    old = {**good, "x-amz-date": stale.strftime("%Y%m%dT%H%M%SZ")}
    assert _check(old) == "InvalidSignatureException"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


def test_the_fake_answers_an_unsigned_request_as_bedrock_does(fake: FakeBedrock) -> None:
    response = httpx.post(f"{fake.endpoint}/model/anthropic.claude-x/converse", content=BODY, timeout=5)
    assert response.status_code == 403 and response.json() == {"message": "Missing Authentication Token"}
    assert response.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException:")


def test_the_fake_answers_a_signed_request(fake: FakeBedrock) -> None:
    url = f"{fake.endpoint}/model/anthropic.claude-x/converse"
    response = httpx.post(url, content=BODY, headers=_signed(url, BODY), timeout=5)
    assert response.status_code == 200 and response.json()["stopReason"] == "end_turn"
    assert response.headers["x-amzn-requestid"]
