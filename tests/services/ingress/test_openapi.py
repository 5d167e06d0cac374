"""The OpenAPI document describes every /v1 and /admin request body and error response."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.ingress.app import create_app
from shared.settings import IngressSettings, Settings

ERROR_REF = "#/components/schemas/ErrorBody"
ANTHROPIC_ERROR_REF = "#/components/schemas/AnthropicErrorBody"


@pytest.fixture(scope="module")
async def doc() -> dict[str, Any]:
    app = create_app(Settings())  # the document needs no lifespan: nothing connects
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def operations(doc: dict[str, Any], prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() if path.startswith(prefix)
            for method, op in ops.items()]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_every_body_the_api_takes_is_described(doc: dict[str, Any]) -> None:
    forms = {path: op["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]
             for method, path, op in operations(doc, "/") if method == "post"
             and "multipart/form-data" in op["requestBody"]["content"]}
    assert forms == {"/v1/audio/transcriptions": ["file", "model"]}
    bodies = {path: op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
              for method, path, op in operations(doc, "/") if method == "post" and path not in forms}
    assert bodies == {"/v1/chat/completions": "#/components/schemas/ChatCompletionRequest",
                      "/v1/embeddings": "#/components/schemas/EmbeddingsRequest",
                      "/v1/completions": "#/components/schemas/CompletionsRequest",
                      "/v1/moderations": "#/components/schemas/ModerationsRequest",
                      "/v1/images/generations": "#/components/schemas/ImagesRequest",
                      "/v1/audio/speech": "#/components/schemas/SpeechRequest",
                      "/v1/responses": "#/components/schemas/ResponsesRequest",
                      "/v1/messages": "#/components/schemas/MessagesRequest",
                      "/v1/messages/count_tokens": "#/components/schemas/CountTokensRequest",
                      "/admin/keys": "#/components/schemas/CreateKey",
                      "/admin/keys/{key_id}/rotate": "#/components/schemas/RotateKey",
                      "/admin/orgs": "#/components/schemas/CreateOrg",
                      "/admin/teams": "#/components/schemas/CreateTeam",
                      "/admin/users": "#/components/schemas/CreateUser"}
    patches = {path: op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
               for method, path, op in operations(doc, "/admin") if method == "patch"}
    assert patches == {f"/admin/{kind}s/{{{kind}_id}}" if kind == "key" else f"/admin/{kind}s/{{object_id}}":
                       f"#/components/schemas/Update{kind.title()}" for kind in ("org", "team", "user", "key")}
    org = doc["components"]["schemas"]["CreateOrg"]
    assert org["required"] == ["id", "name"] and org["additionalProperties"] is False
    assert {"models", "rpm_limit", "tpm_limit", "max_budget", "budget_duration"} <= set(org["properties"])
    chat = doc["components"]["schemas"]["ChatCompletionRequest"]
    assert chat["required"] == ["model", "messages"] and chat["additionalProperties"] is True
    roles = chat["properties"]["messages"]["items"]["discriminator"]["mapping"]
    assert sorted(roles) == ["assistant", "developer", "function", "system", "tool", "user"]
    assert chat["properties"]["temperature"]["anyOf"][0] == {"type": "number", "maximum": 2.0, "minimum": 0.0}


@pytest.mark.parametrize(("prefix", "statuses"), [
    ("/v1", {"400", "401", "403", "404", "413", "429", "431", "502", "503", "504"}),
    ("/admin", {"400", "401", "403", "404", "409", "413", "422", "431", "503"}),
])
def test_every_error_is_described_in_openais_shape(doc: dict[str, Any], prefix: str, statuses: set[str]) -> None:
    found = operations(doc, prefix)
    assert len(found) >= 4
    for method, path, op in found:
        errors = {status: r for status, r in op["responses"].items() if status[0] in "45"}
        assert set(errors) == statuses, (method, path)
        shape = ANTHROPIC_ERROR_REF if path.startswith("/v1/messages") else ERROR_REF  # the Anthropic surface's own
        for response in errors.values():
            assert response["content"]["application/json"]["schema"] == {"$ref": shape}
        assert op["security"] == [{"bearer": []}]


def test_422_only_on_the_admin_api_and_every_reference_resolves(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert all("422" not in op["responses"] for _, path, op in operations(doc, "/") if not path.startswith("/admin"))
    names = {ref.removeprefix("#/components/schemas/") for ref in refs(doc)}
    assert names and names <= set(schemas)
    assert schemas["ErrorBody"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}


@pytest.mark.parametrize("on", [False, True])
def test_fastapis_own_opentelemetry_follows_the_setting(on: bool) -> None:
    app = create_app(Settings(ingress=IngressSettings(opentelemetry=on)))
    assert {app._telemetry[part] for part in ("tracing", "metrics", "logs")} == {on}
