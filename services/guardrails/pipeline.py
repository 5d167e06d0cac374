"""Guardrails as a stage of the chat pipeline.

A chat call (ChatRouteRequest) arrives on GUARDRAILS_CHAT with the ingress's reply subject.
It is checked; a block is answered to the caller at once as an error frame (HTTP 400,
`guardrail_blocked`, naming the rule); otherwise the call, redacted if need be, goes on to
the router with the same reply subject, so the router's answer (or stream) goes straight
to the ingress.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from services.guardrails.checks import Policy, check_input
from shared.errors import ErrorBody, ErrorDetail
from shared.messages import ChatRouteRequest, RouteError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forward:
    """Send this call on to the router."""

    data: bytes


@dataclass(frozen=True)
class Refuse:
    """Answer the caller with this error instead."""

    status: int
    error: RouteError


def _refusal(status: int, message: str, code: str, error_type: str = "invalid_request_error") -> Refuse:
    detail = ErrorDetail(message=message, type=error_type, param="messages", code=code)
    return Refuse(status, RouteError(status=status, body=ErrorBody(error=detail)))


def stage_chat(policy: Policy, data: bytes) -> Forward | Refuse:
    """What to do with one chat call; never raises."""
    try:
        request = ChatRouteRequest.model_validate_json(data)
    except ValidationError as exc:
        return _refusal(400, f"invalid chat call: {exc.error_count()} validation error(s)", "invalid_request")
    try:
        verdict = check_input(policy, request.body.messages)
    except Exception:
        log.exception("guardrail check failed for request %s", request.request_id)
        return _refusal(500, "The guardrail check failed.", "guardrail_error", "api_error")
    if verdict.verdict == "block":
        message = verdict.message or f"Request blocked by guardrail rule '{verdict.rule}'."
        return _refusal(400, message, "guardrail_blocked")
    if verdict.verdict == "modify" and verdict.messages is not None:
        request.body.messages = verdict.messages
        return Forward(request.model_dump_json(exclude_unset=True).encode())
    return Forward(data)  # untouched: no need to serialise again
