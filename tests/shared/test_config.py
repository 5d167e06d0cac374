"""The gateway config: validation of references, names and secrets; secret resolution;
exact prices."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shared.config import GatewayConfig, Pricing, load_config
from shared.secrets import resolve_secret


def config(providers: list[dict[str, Any]], models: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"providers": providers, "models": models or []}


def openai(name: str = "up", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "openai", "base_url": "https://api.example.com/v1", **extra}


def model(name: str, *providers: str) -> dict[str, Any]:
    return {"name": name, "deployments": [{"provider": p, "model": "m"} for p in providers]}


def rejected(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        GatewayConfig.model_validate(data)
    return str(caught.value)


def test_a_valid_config_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "jetgate.yaml"
    path.write_text(yaml.safe_dump(config(
        [openai("up", api_key="env:UP_KEY", headers={"x-org": "a"}), {"name": "local", "type": "mock"}],
        [model("chat", "up", "local")])))
    loaded = load_config(path)
    up = loaded.provider("up")  # its type's fields are the router's to check (providers/test_registry.py)
    assert up.type == "openai" and up.fields()["api_key"] == "env:UP_KEY" and up.fields()["headers"] == {"x-org": "a"}
    assert loaded.provider("local").type == "mock"
    chat = loaded.model("chat")
    assert chat is not None and [d.provider for d in chat.deployments] == ["up", "local"]
    assert loaded.model("nope") is None
    with pytest.raises(KeyError):
        loaded.provider("nope")


def test_an_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    loaded = load_config(path)
    assert loaded.providers == [] and loaded.models == [] and loaded.guardrails.enabled


def test_unknown_provider_reference_is_rejected() -> None:
    message = rejected(config([openai("up")], [model("chat", "up", "missing")]))
    assert "'chat' names unknown provider 'missing'" in message


def test_duplicate_provider_names_are_rejected() -> None:
    assert "provider names must be unique" in rejected(config([openai("up"), {"name": "up", "type": "mock"}]))


def test_duplicate_model_names_are_rejected() -> None:
    assert "model names must be unique" in rejected(config([openai("up")], [model("m", "up"), model("m", "up")]))


@pytest.mark.parametrize("data", [
    config([openai("up")], [{"name": "m", "deployments": []}]),  # a model needs a deployment
    config([openai("up")], [{**model("m", "up"), "mode": "video"}]),
    {"guardrails": {"rules": [{"name": "r", "pattern": "x", "action": "warn"}]}},
])
def test_malformed_configs_are_rejected(data: dict[str, Any]) -> None:
    rejected(data)


def test_a_bad_guardrail_regex_is_a_validation_error_naming_the_rule() -> None:
    message = rejected({"guardrails": {"rules": [{"name": "r", "pattern": "(unclosed"}]}})
    assert "guardrails.rules.0.pattern" in message


def test_env_reference_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JETGATE_TEST_SECRET", "from-the-env")
    secret = resolve_secret("env:JETGATE_TEST_SECRET")
    assert secret is not None and secret.get_secret_value() == "from-the-env"
    assert "from-the-env" not in repr(secret) and "from-the-env" not in str(secret)
    monkeypatch.delenv("JETGATE_TEST_SECRET")
    assert resolve_secret("env:JETGATE_TEST_SECRET") is None


def test_file_reference_resolves_stripped(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text("from-a-file\n")
    secret = resolve_secret(f"file:{path}")
    assert secret is not None and secret.get_secret_value() == "from-a-file"
    assert resolve_secret(f"file:{tmp_path / 'missing.txt'}") is None
    assert resolve_secret(None) is None and resolve_secret("") is None


def test_pricing_cost_is_exact() -> None:
    pricing = Pricing(input_per_million=Decimal("0.15"), output_per_million=Decimal("0.6"))
    assert pricing.cost(1234, 567) == Decimal("0.0005253")
    assert pricing.cost(1, 0) == Decimal("0.00000015")
    assert pricing.cost(0, 0) == 0
    big = Pricing(input_per_million=Decimal("2.5"), output_per_million=Decimal("10"))
    assert big.cost(10**9, 10**9) == Decimal("12500")
    assert sum((pricing.cost(1, 1) for _ in range(10_000)), Decimal(0)) == Decimal("0.0075")


def test_pricing_from_yaml_floats_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("providers: [{name: up, type: mock}]\n"
                    "models: [{name: m, deployments: [{provider: up, model: x}],\n"
                    "          pricing: {input_per_million: 0.1, output_per_million: 0.3}}]\n")
    pricing = load_config(path).models[0].pricing
    assert pricing.input_per_million == Decimal("0.1") and pricing.output_per_million == Decimal("0.3")
    assert pricing.cost(3, 7) == Decimal("0.0000024")
    assert Pricing().cost(10**6, 10**6) == 0
