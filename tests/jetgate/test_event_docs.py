"""The committed JSON Schema files and AsyncAPI document are what the models generate, and
they describe what the gateway really publishes."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import get_args

import jsonschema
import pytest

from jetgate.event_docs import ASYNCAPI_FILE, SCHEMA_DIR, generated, stale, write
from shared.bus import event_data, event_subject
from shared.event_catalog import BY_TYPE, CATALOG
from shared.events import (
    AdminData,
    AdminEvent,
    BudgetWarningData,
    BudgetWarningEvent,
    ConfigLoadedData,
    ConfigLoadedEvent,
    ConfigSummary,
    CorrectionData,
    Event,
    GuardrailData,
    GuardrailEvent,
    GuardrailFinding,
    KeyData,
    KeyEvent,
    ProviderHealthData,
    ProviderHealthEvent,
    RequestData,
    RequestEvent,
    UsageCorrection,
    UsageData,
    UsageEvent,
)
from shared.subjects import SYSTEM_ORG, dlq_subject

ROOT = Path(__file__).resolve().parents[2]

SAMPLES = {
    "usage.recorded": UsageEvent(source="router", org_id="acme", key_id="key_1", data=UsageData(model="gpt-4o-mini")),
    "usage.corrected": UsageCorrection(source="ingress", org_id="acme", key_id="key_1",
                                       data=CorrectionData(call_id="01a2", status="error", error_code="bus_unavailable")),
    **{t: RequestEvent(type=t, source="ingress", org_id="acme", data=RequestData(path="/v1/chat/completions"))
       for t in ("request.received", "request.completed", "request.failed", "request.denied")},
    **{t: KeyEvent(type=t, source="cli", org_id="acme", data=KeyData(name="k")) for t in ("key.created", "key.revoked")},
    "admin.action": AdminEvent(source="ingress", org_id="acme", key_id="key_1", data=AdminData(
        actor_key_id="key_1", action="created", object="team", object_id="eng", after={"id": "eng"})),
    "budget.warning": BudgetWarningEvent(source="ingress", org_id="acme", data=BudgetWarningData(
        level="org", level_id="acme", max_budget=Decimal(100), committed=Decimal(81), share=0.8,
        period_start=datetime(2026, 12, 1, tzinfo=UTC))),
    "guardrail.finding": GuardrailEvent(source="guardrails", org_id="acme", data=GuardrailData(
        endpoint="chat", model="m", verdict="modify", findings=[GuardrailFinding(rule="pii.email", action="redact")])),
    "provider.health": ProviderHealthEvent(source="router", org_id=SYSTEM_ORG, data=ProviderHealthData(
        provider="openai", model="gpt-4o", deployment="openai/gpt-4o", state="unhealthy", consecutive_failures=3,
        error_type="api_error", error_code="upstream_error", status=502, cooldown_s=30, instance="host:1")),
    "config.loaded": ConfigLoadedEvent(source="router", org_id=SYSTEM_ORG, data=ConfigLoadedData(
        service="router", instance="host:1", digest="ab" * 32, summary=ConfigSummary(providers=["openai"]))),
}


def test_the_catalog_lists_every_event_model() -> None:
    """A type added to shared/events.py's `Event` union without a catalog entry (so without a
    schema file, nor a place in the AsyncAPI document and the feed) fails here."""
    union = get_args(get_args(Event)[0])
    published = {value for model in union for value in get_args(model.model_fields["type"].annotation)}
    assert published == set(BY_TYPE)
    assert all(BY_TYPE[t].model in union for t in published)


def test_committed_files_match_the_models() -> None:
    assert stale(ROOT) == [], "run `jetgate events schemas` and commit docs/schemas and docs/asyncapi.json"


def test_a_file_that_differs_or_is_left_over_is_found(tmp_path: Path) -> None:
    write(tmp_path)
    assert stale(tmp_path) == []
    usage = tmp_path / SCHEMA_DIR / "usage.recorded.json"
    usage.write_text(usage.read_text().replace('"prompt_tokens"', '"input_tokens"'))
    (tmp_path / SCHEMA_DIR / "model.retired.json").write_text("{}")
    (tmp_path / ASYNCAPI_FILE).unlink()
    assert stale(tmp_path) == sorted([SCHEMA_DIR / "usage.recorded.json", SCHEMA_DIR / "model.retired.json",
                                      ASYNCAPI_FILE])
    write(tmp_path)
    assert stale(tmp_path) == [] and not (tmp_path / SCHEMA_DIR / "model.retired.json").exists()


def test_every_published_type_has_a_schema_its_events_satisfy() -> None:
    assert set(SAMPLES) == {kind.type for kind in CATALOG}
    for kind in CATALOG:
        schema = json.loads((ROOT / SCHEMA_DIR / f"{kind.type}.json").read_text())
        event = json.loads(event_data(SAMPLES[kind.type]))  # as it is published
        jsonschema.validate(event, schema)
        with pytest.raises(jsonschema.ValidationError):  # the type is pinned
            jsonschema.validate({**event, "type": "something.else"}, schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**event, "surprise": 1}, schema)  # the envelope is closed
        assert schema["x-jetgate"]["subject"] == kind.subject


def test_the_asyncapi_document_lists_every_subject() -> None:
    document = json.loads((ROOT / ASYNCAPI_FILE).read_text())
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    published = {event_subject(event).replace(".acme", ".{org_id}", 1) for event in SAMPLES.values()}
    assert published == {kind.subject for kind in CATALOG}
    assert addresses == published | {dlq_subject("x").replace(".x", ".{consumer}")}
    for channel in document["channels"].values():  # the gateway's own events name no organisation
        assert bool(channel.get("parameters")) == ("{" in channel["address"]), channel["address"]
    assert {kind.subject for kind in CATALOG if kind.system} == {
        f"jetgate.audit.{SYSTEM_ORG}.provider.health", f"jetgate.audit.{SYSTEM_ORG}.config.loaded"}
    payloads = {name for name in document["components"]["schemas"]}
    assert {"UsageEvent", "RequestEvent", "KeyEvent"} <= payloads
    assert generated()[ASYNCAPI_FILE] == (ROOT / ASYNCAPI_FILE).read_text()
