"""Guardrails as a stage of the pipeline: check a call, then let it go on or refuse it.

The body's messages are checked as the client sent them. A block refuses the call (HTTP
400, `guardrail_blocked`, naming the rule); a redaction passes a changed body on; a clean
call passes on untouched, its bytes never serialised again.
"""
from __future__ import annotations

from typing import Any

import orjson

from services.guardrails.checks import Policy, check_input
from shared.errors import InvalidRequest
from shared.metrics import GUARDRAIL_FINDINGS
from shared.protocol import Call


def blocked(rule: str | None, message: str | None) -> InvalidRequest:
    return InvalidRequest(message or f"Request blocked by guardrail rule '{rule}'.", param="messages",
                          code="guardrail_blocked")


def checked_body(policy: Policy, call: Call) -> bytes | None:
    """The body the call goes on with: None when unchanged. Raises InvalidRequest on a block."""
    if not policy.enabled:
        return None
    try:
        body: dict[str, Any] = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The call's body is not JSON.", code="invalid_call") from None
    verdict = check_input(policy, body.get("messages") or [])
    for finding in verdict.findings:
        GUARDRAIL_FINDINGS.labels(finding.rule, finding.action).inc(finding.count)
    if verdict.verdict == "block":
        raise blocked(verdict.rule, verdict.message)
    if verdict.verdict == "modify" and verdict.messages is not None:
        return orjson.dumps({**body, "messages": verdict.messages})
    return None
