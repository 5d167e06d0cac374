"""Guardrails as a stage of the pipeline: check a call, then let it go on or refuse it.

Each endpoint names the part of its body the upstream reads as text (`messages` for chat,
`input` for embeddings; the whole body for the Responses API, whose texts are in
`instructions` and `input`) and how to walk it (services/guardrails/texts.py). That part
is checked as the client sent it. A block refuses the call (HTTP 400, `guardrail_blocked`,
naming the rule, `param` the checked field); a redaction passes a changed body on; a clean
call passes on untouched, its bytes never serialised again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from services.guardrails.checks import Policy, check_input
from services.guardrails.texts import Walk, walk_input, walk_messages, walk_responses
from services.guardrails.verdict import GuardrailVerdict
from shared.errors import InvalidRequest
from shared.metrics import GUARDRAIL_FINDINGS
from shared.pipeline import Endpoint
from shared.protocol import Call


@dataclass(frozen=True, slots=True)
class Checked:
    """The body field the guardrails check (None: the whole body), where its texts are, and
    the `param` a block names."""

    field: str | None
    walk: Walk
    param: str


def _field(name: str, walk: Walk) -> Checked:
    return Checked(name, walk, name)


CHECKED: dict[Endpoint, Checked] = {
    Endpoint.CHAT: _field("messages", walk_messages),
    Endpoint.RESPONSES: Checked(None, walk_responses, "input"),
    Endpoint.EMBEDDINGS: _field("input", walk_input),
    Endpoint.COMPLETIONS: _field("prompt", walk_input),
    Endpoint.MODERATIONS: _field("input", walk_input),  # strings; image parts are not text
    Endpoint.IMAGES: _field("prompt", walk_input),
    Endpoint.SPEECH: _field("input", walk_input),
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
    checked = CHECKED[call.envelope.endpoint]
    try:
        body: Any = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The call's body is not JSON.", code="invalid_call") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The call's body is not a JSON object.", code="invalid_call")
    verdict = check_input(policy, body if checked.field is None else body.get(checked.field), checked.walk)
    for finding in verdict.findings:
        GUARDRAIL_FINDINGS.labels(finding.rule, finding.action).inc(finding.count)
    if verdict.findings and report is not None:
        report(call, verdict)
    if verdict.verdict == "block":
        raise blocked(verdict.rule, verdict.message, checked.param)
    if verdict.verdict == "modify":
        return orjson.dumps(verdict.document if checked.field is None else {**body, checked.field: verdict.document})
    return None
