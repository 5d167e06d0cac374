"""The one redaction: known secret values in every written form, and credential shapes."""
from __future__ import annotations

import base64
import io
import logging
import secrets
from urllib.parse import quote

import orjson
import pytest

from shared.redact import (
    MASK,
    RedactingFilter,
    holds_secret,
    redact_content,
    redact_event_json,
    redact_secrets,
)
from shared.secrets import KNOWN_SECRETS


def known(prefix: str = "known-") -> str:
    """A secret of this test's own, remembered (no pattern knows its shape)."""
    value = prefix + secrets.token_urlsafe(18)
    KNOWN_SECRETS.add(value)
    return value


def test_a_known_value_is_cut_whatever_its_shape() -> None:
    value = known("plain")
    assert redact_secrets(f"Incorrect API key provided: {value}.") == f"Incorrect API key provided: {MASK}."
    assert redact_secrets(value + value) == MASK + MASK


def test_url_encoded_json_escaped_and_base64_forms_are_cut() -> None:
    value = known('we/ird+"chars"-')
    for written in (quote(value, safe=""), orjson.dumps(value).decode()[1:-1],
                    base64.b64encode(value.encode()).decode(), base64.urlsafe_b64encode(value.encode()).decode()):
        assert value not in (scrubbed := redact_secrets(f"seen: {written} end"))
        assert written.rstrip("=") not in scrubbed and MASK in scrubbed


def test_basic_auth_of_a_url_credential_is_cut() -> None:
    password = "pw-" + secrets.token_hex(8)
    KNOWN_SECRETS.add(f"jetgate:{password}")
    header = "Basic " + base64.b64encode(f"jetgate:{password}".encode()).decode()
    assert base64.b64encode(f"jetgate:{password}".encode()).decode().rstrip("=") not in redact_secrets(header)


def test_credentials_in_urls_are_cut_even_when_unknown() -> None:
    scrubbed = redact_secrets("could not connect to postgresql+asyncpg://jetgate:hunter2-unknown@db:5432/jetgate")
    assert "hunter2-unknown" not in scrubbed
    assert scrubbed == f"could not connect to postgresql+asyncpg://jetgate:{MASK}@db:5432/jetgate"
    assert redact_secrets("see https://example.com/a:b and mailto:x@y") == "see https://example.com/a:b and mailto:x@y"


def test_holds_secret_tells_when_redaction_may_change_text() -> None:
    value = known()
    assert holds_secret(f"x {value} y") and holds_secret("Bearer abcdefghijkl") and holds_secret("nats://u:p@h")
    assert not holds_secret('{"type":"request.completed","data":{"path":"/v1/chat/completions"}}')


def test_content_keeps_its_json_and_loses_only_known_values() -> None:
    value = known("content-key-")
    answer = orjson.dumps({"choices": [{"message": {"content": f"your key is {value}; sk-example-0000000000 is a "
                                                               "sample, Bearer token-like-text too"}}]})
    scrubbed = redact_content(answer)
    content = orjson.loads(scrubbed)["choices"][0]["message"]["content"]
    assert value not in content and MASK in content
    assert "sk-example-0000000000" in content and "Bearer token-like-text" in content  # a model may write these
    assert redact_content(b'{"a": 1}') == b'{"a": 1}'


def test_a_short_known_value_never_touches_content() -> None:
    KNOWN_SECRETS.add("12345678")  # a weak database password: too short to cut out of floats
    embedding = b'{"data":[{"embedding":[0.123456789,-0.0012345678]}]}'
    assert redact_content(embedding) == embedding
    assert "12345678" not in redact_secrets("password 12345678 was refused")  # but never in a message


def test_events_are_redacted_string_by_string() -> None:
    value = known()
    event = {"id": "e1", "data": {"reason": f"upstream said {value}", "latency_ms": 1.5, "tags": [value, 3]},
             value: "as a key"}
    scrubbed = redact_event_json(orjson.dumps(event))
    assert value.encode() not in scrubbed
    assert orjson.loads(scrubbed) == {"id": "e1", "data": {"reason": f"upstream said {MASK}", "latency_ms": 1.5,
                                                           "tags": [MASK, 3]}, MASK: "as a key"}
    clean = orjson.dumps({"id": "e2", "data": {"path": "/v1/embeddings"}})
    assert redact_event_json(clean) is clean  # nothing to cut: not even parsed


@pytest.fixture
def logged() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"tests.redact.{secrets.token_hex(4)}")
    logger.addHandler(handler)
    logger.propagate = False
    return logger, out


def test_log_records_are_redacted_in_message_arguments_and_traceback(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    value = known()
    logger.warning("deployment failed: %s", f"upstream echoed {value}")
    logger.error(f"inline {value}")
    try:
        raise RuntimeError(f"boom {value}")
    except RuntimeError:
        logger.exception("a call failed")
    text = out.getvalue()
    assert value not in text
    assert "deployment failed: upstream echoed ***" in text and "inline ***" in text
    assert "RuntimeError: boom ***" in text  # the traceback is there, redacted
