"""Settings: nested, from the environment, handed to children as environment variables,
and every one of them documented."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.settings import AccountingSettings, IngressSettings, Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def env_names() -> list[str]:
    names = []
    for name, value in Settings():
        if isinstance(value, BaseModel):
            names += [f"JETGATE_{name.upper()}__{field.upper()}" for field, _ in value]
        else:
            names.append(f"JETGATE_{name.upper()}")
    return names


def test_groups_are_set_with_a_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JETGATE_INGRESS__PORT", "9000")
    monkeypatch.setenv("JETGATE_ROUTER__DRAIN_TIMEOUT_S", "3")
    monkeypatch.setenv("JETGATE_NATS_URL", "nats://x:4222")
    settings = Settings()
    assert settings.ingress.port == 9000 and settings.nats_url == "nats://x:4222"
    assert settings.router.drain_timeout_s == 3
    assert settings.router.metrics_port == 9102  # a group's other defaults survive one field set by env


def test_to_env_gives_back_equal_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(nats_url="nats://a:1", master_key="jg-secret-master",  # type: ignore[arg-type]
                        ingress=IngressSettings(port=1234, worker_timeout_s=2.5),
                        accounting=AccountingSettings(ack_wait_s=3))
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


def test_every_setting_is_documented() -> None:
    documented = DOCS.read_text()
    missing = [name for name in env_names() if f"`{name}`" not in documented]
    assert not missing, f"docs/settings.md does not name {missing}"
