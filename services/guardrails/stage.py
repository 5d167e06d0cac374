"""Guardrails as a stage of the pipeline: check a call, then let it go on or refuse it.

Each endpoint names the part of its body the upstream reads as text (`messages` for chat,
`input` for embeddings) and how to walk it (services/guardrails/texts.py). That part is
checked as the client sent it. A block refuses the call (HTTP 400, `guardrail_blocked`,
naming the rule, `param` the checked field); a redaction passes a changed body on; a clean
call passes on untouched, its bytes never serialised again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from services.guardrails.checks import Policy, check_input
from services.guardrails.texts import Walk, walk_input, walk_messages
from services.guardrails.verdict import GuardrailVerdict
from shared.errors import InvalidRequest
from shared.metrics import GUARDRAIL_FINDINGS
from shared.pipeline import Endpoint
from shared.protocol import Call

# endpoint -> the body field the guardrails check, and where its texts are
CHECKED: dict[Endpoint, tuple[str, Walk]] = {
    Endpoint.CHAT: ("messages", walk_messages),
    Endpoint.EMBEDDINGS: ("input", walk_input),
    Endpoint.COMPLETIONS: ("prompt", walk_input),
    Endpoint.MODERATIONS: ("input", walk_input),  # strings; image parts are not text
    Endpoint.IMAGES: ("prompt", walk_input),
    Endpoint.SPEECH: ("input", walk_input),
}


def blocked(rule: str | None, message: str | None, param: str = "messages") -> InvalidRequest:
    return InvalidRequest(message or f"Request blocked by guardrail rule '{rule}'.", param=param,
                          code="guardrail_blocked")


FindingsReport = Callable[[Call, GuardrailVerdict], None]


def checked_body(policy: Policy, call: Call, report: FindingsReport | None = None) -> bytes | None:
    """The body the call goes on with: None when unchanged. Raises InvalidRequest on a block.
    A verdict with findings (a block, redactions) is given to `report` first."""
    if not policy.enabled:
        return None
    field, walk = CHECKED[call.envelope.endpoint]
    try:
        body: Any = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The call's body is not JSON.", code="invalid_call") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The call's body is not a JSON object.", code="invalid_call")
    verdict = check_input(policy, body.get(field), walk)
    for finding in verdict.findings:
        GUARDRAIL_FINDINGS.labels(finding.rule, finding.action).inc(finding.count)
    if verdict.findings and report is not None:
        report(call, verdict)
    if verdict.verdict == "block":
        raise blocked(verdict.rule, verdict.message, field)
    if verdict.verdict == "modify":
        return orjson.dumps({**body, field: verdict.document})
    return None
