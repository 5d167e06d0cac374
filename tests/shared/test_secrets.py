"""The registry of the secrets a process holds: filled as secrets are resolved, never at import."""
from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from shared.secrets import (
    KNOWN_SECRETS,
    MIN_SECRET_CHARS,
    KnownSecrets,
    remember_settings,
    resolve_secret,
    url_credentials,
    written_forms,
)
from shared.settings import Settings


def fresh(prefix: str = "v") -> str:
    """A value no other test registers (the registry is process-wide)."""
    return f"{prefix}{secrets.token_hex(12)}"


def test_nothing_is_known_at_import() -> None:
    code = "from shared import secrets, redact, errors, service; print(len(secrets.KNOWN_SECRETS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"JETGATE_MASTER_KEY": "jg-master-" + secrets.token_hex(8), "PATH": ""})
    assert out.stdout.strip() == "0"


def test_every_written_form_is_known() -> None:
    value = "p@ss/w\"rd+" + secrets.token_hex(4)
    plain, encoded = written_forms(value)
    assert {value, quote(value, safe=""), value.replace('"', '\\"')} <= plain
    assert base64.b64encode(value.encode()).decode().rstrip("=") in encoded
    assert base64.urlsafe_b64encode(value.encode()).decode().rstrip("=") in encoded


def test_short_values_are_not_remembered() -> None:
    known = KnownSecrets()
    known.add("x" * (MIN_SECRET_CHARS - 1))
    known.add("")
    known.add(None)
    assert len(known) == 0 and known.forms.text == ()
    known.add(SecretStr("y" * MIN_SECRET_CHARS))
    assert "y" * MIN_SECRET_CHARS in known


def test_forms_are_longest_first_and_content_forms_are_plain_long_and_json_safe() -> None:
    known = KnownSecrets()
    short, long_, quoted = "short-secret", "a-much-longer-secret-value", 'has"quote-and-is-long-enough'
    for value in (short, long_, quoted):
        known.add(value)
    lengths = [len(form) for form in known.forms.text]
    assert lengths == sorted(lengths, reverse=True)
    assert long_.encode() in known.forms.content
    assert short.encode() not in known.forms.content  # too short to cut out of a model's answer
    assert all(b'"' not in form and b"\\" not in form for form in known.forms.content)
    assert base64.b64encode(long_.encode()).rstrip(b"=") not in known.forms.content
    known.clear()
    assert len(known) == 0 and known.forms.content == ()


def test_resolving_a_secret_remembers_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env, from_file = fresh("env-"), fresh("file-")
    monkeypatch.setenv("JETGATE_TEST_PROVIDER_KEY", from_env)
    (tmp_path / "key.txt").write_text(from_file + "\n")
    assert from_env not in KNOWN_SECRETS and from_file not in KNOWN_SECRETS
    resolve_secret("env:JETGATE_TEST_PROVIDER_KEY")
    resolve_secret(f"file:{tmp_path / 'key.txt'}")
    assert from_env in KNOWN_SECRETS and from_file in KNOWN_SECRETS


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+asyncpg://jetgate:s3cr%2Fet-pass@127.0.0.1:5432/jetgate",
     ["s3cr%2Fet-pass", "s3cr/et-pass", "jetgate:s3cr/et-pass"]),
    ("nats://ingress:bus-password@127.0.0.1:4222,nats://ingress:bus-password@127.0.0.1:4223",
     ["bus-password", "bus-password", "ingress:bus-password"] * 2),
    ("nats://s3cr3t-token-value@127.0.0.1:4222", ["s3cr3t-token-value", "s3cr3t-token-value"]),
    ("postgresql://127.0.0.1:5432/jetgate", []),
    ("chdb:///tmp/chdb", []),
])
def test_credentials_in_server_urls(url: str, expected: list[str]) -> None:
    assert url_credentials(url) == expected


def test_settings_secrets_are_remembered_at_startup() -> None:
    master, db_password, nats_token = fresh("jg-master-"), fresh("db-"), fresh("tok")
    settings = Settings(master_key=SecretStr(master), database_url=f"postgresql://jetgate:{db_password}@h:5432/db",
                        nats_url=f"nats://{nats_token}@127.0.0.1:4222")
    for value in (master, db_password, nats_token):
        assert value not in KNOWN_SECRETS
    remember_settings(settings)
    for value in (master, db_password, f"jetgate:{db_password}", nats_token):
        assert value in KNOWN_SECRETS
