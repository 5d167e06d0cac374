"""Schemathesis against the running gateway's own /openapi.json: whatever it generates
from the document, valid and invalid (bodies, query and path parameters), the gateway
never answers 5xx, and every status it answers is one the document names."""
from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance

from tests.e2e.gateway import Gateway

# examples per operation and mode (the run is derandomized: the same cases every time);
# bodies with OpenAI's deep schemas are slow to generate, the rest is cheap
EXAMPLES = 12
MORE = 20
CHEAP = ("/admin", "/v1/models")
# every other generated body names a model the gateway serves, so it travels the whole
# pipeline (guardrails, router, the fake upstream) instead of stopping at a 404
# server-sent event feeds never end by themselves (tests/e2e/test_event_feed.py covers them)
ENDLESS = ("/events/",)
SERVED = {"POST /v1/chat/completions": "gpt-4o-mini", "POST /v1/embeddings": "text-embedding-3-small"}


def fuzz(operation: Any, mode: GenerationMode, auth: dict[str, str], failures: list[str]) -> int:
    """Sends up to EXAMPLES generated requests; failures are collected, not raised, so one
    run reports them all. Returns how many requests were sent."""
    sent = 0

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=MORE if operation.path.startswith(CHEAP) else EXAMPLES, deadline=None, database=None,
              derandomize=True, suppress_health_check=list(HealthCheck))
    def probe(case: Any) -> None:
        nonlocal sent
        sent += 1
        if operation.label in SERVED and isinstance(case.body, dict) and "model" in case.body and sent % 2:
            case.body["model"] = SERVED[operation.label]
        response = case.call(headers=auth, timeout=30)
        try:
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis raises a group of its checks' failures
            failures.append(f"{operation.label} ({mode.value}) -> {response.status_code} "
                            f"{response.text[:300]!r}: {failure}"[:1200])

    try:
        probe()
    except Unsatisfiable:  # no invalid input exists for it (GET /health takes none)
        assert mode is GenerationMode.NEGATIVE
    return sent


def test_no_generated_request_gets_a_server_error(gateway: Gateway) -> None:
    api = schemathesis.openapi.from_url(gateway.url + "/openapi.json")
    auth = {"authorization": f"Bearer {gateway.master_key}"}
    operations = [op for op in (result.ok() for result in api.get_all_operations()) if not op.path.startswith(ENDLESS)]
    assert {op.label for op in operations} >= {"POST /v1/chat/completions", "POST /v1/embeddings", "POST /admin/keys",
                                                "GET /admin/usage", "DELETE /admin/keys/{key_id}"}
    failures: list[str] = []
    sent = sum(fuzz(op, mode, auth, failures) for op in operations
               for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    assert sent > len(operations) * EXAMPLES
    assert not failures, "\n".join(failures[:10])
