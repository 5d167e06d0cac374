"""The event types' JSON Schema files (docs/schemas/<type>.json) and the AsyncAPI document of
every event subject (docs/asyncapi.json), generated from the models in shared/ through the
catalog (shared/event_catalog.py). `jetgate events schemas` writes them; `--check` (and
tests/shared/test_event_docs.py) fails when a committed file differs from the models."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.event_catalog import CATALOG, EventKind
from shared.subjects import DLQ_STREAM

SCHEMA_DIR = Path("docs/schemas")
ASYNCAPI_FILE = Path("docs/asyncapi.json")
ORG_PARAMETER = {"org_id": {"description": "the organisation id (a slug; other characters become `_`)"}}


def event_schema(kind: EventKind) -> dict[str, Any]:
    """The JSON Schema of one event type: its model's, `type` pinned to that one value."""
    schema = kind.model.model_json_schema(mode="serialization")
    properties = schema["properties"]
    properties["type"] = {"const": kind.type, "title": "Type", "type": "string"}
    schema["required"] = sorted({*schema.get("required", []), "type", "data"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:jetgate:event:{kind.type}:v{kind.version}",
        **schema,
        "title": kind.type,
        "description": kind.description,
        "x-jetgate": {"schema_version": kind.version, "stream": kind.stream.name, "subject": kind.subject,
                      "publishers": list(kind.publishers)},
    }


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 of every event subject, made by FastStream from a broker that declares
    each subject the gateway publishes, with its model as the payload."""
    from faststream.nats import NatsBroker
    from faststream.specification import AsyncAPI

    broker = NatsBroker("nats://127.0.0.1:4222")
    for kind in CATALOG:
        broker.publisher(kind.subject, title=kind.type, schema=kind.model,
                         description=f"{kind.description} Stream {kind.stream.name}; published by "
                                     f"{', '.join(kind.publishers)}.")
    broker.publisher("jetgate.dlq.{consumer}", title="dead-letter", schema=bytes,
                     description=f"Raw bytes a consumer could not take, with the reason in headers. Stream "
                                 f"{DLQ_STREAM.name}.")
    spec = AsyncAPI(broker, title="JetGate events", version="1", schema_version="3.0.0",
                    description="Every event subject of JetGate (docs/events.md).").to_specification()
    document: dict[str, Any] = json.loads(spec.to_json())
    for channel in document["channels"].values():
        if "{org_id}" in channel["address"]:
            channel["parameters"] = ORG_PARAMETER
        elif "{consumer}" in channel["address"]:
            channel["parameters"] = {"consumer": {"description": "the consumer that dead-lettered it"}}
    return document


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def generated() -> dict[Path, str]:
    """Every generated file (relative to the repository root) and its text."""
    files = {SCHEMA_DIR / f"{kind.type}.json": _text(event_schema(kind)) for kind in CATALOG}
    files[ASYNCAPI_FILE] = _text(asyncapi_document())
    return files


def stale(root: Path) -> list[Path]:
    """Files that differ from the models, are missing, or are left over from a removed type."""
    files = generated()
    differ = [path for path, text in files.items() if not (root / path).exists() or (root / path).read_text() != text]
    extra = [path.relative_to(root) for path in (root / SCHEMA_DIR).glob("*.json") if path.relative_to(root) not in files]
    return sorted(differ + extra)


def write(root: Path) -> list[Path]:
    """(Re)write every file; remove the schemas of types no longer published."""
    files = generated()
    (root / SCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    for path in (root / SCHEMA_DIR).glob("*.json"):
        if path.relative_to(root) not in files:
            path.unlink()
    for path, text in files.items():
        (root / path).write_text(text)
    return sorted(files)
